"""Output conventions shared by the figures of ``python analysis/plot_*.py``.

``-o plots/gnorm.png --format png svg`` writes ``plots/gnorm.png`` and ``plots/gnorm.svg``
(the stem of ``-o``, one file per format), each through nmt_suite.files' temporary name and
rename, so an interrupted run never leaves half a figure under the final name.
"""
import argparse
from pathlib import Path

import matplotlib

from nmt_suite.files import atomic_open

matplotlib.use("Agg")  # files only; no display needed (CI, ssh)

FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMATS = ("png", "svg")


def add_output_options(parser: argparse.ArgumentParser, default_help=None):
    """``-o/--output`` (required unless ``default_help`` says what the default is), ``--format``, ``--dpi``."""
    parser.add_argument("-o", "--output", type=Path, required=default_help is None,
                        help="output path; its stem names every format's file"
                        + (f" (default: {default_help})" if default_help else ""))
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=list(DEFAULT_FORMATS),
                        help="file formats to write (default: %(default)s)")
    parser.add_argument("--dpi", type=int, default=150, help="raster resolution (default: %(default)s)")


def output_paths(output: Path, formats) -> list:
    output = Path(output)
    return [output.with_suffix("." + fmt) for fmt in dict.fromkeys(formats)]


def save_figure(fig, output: Path, formats, dpi: int = 150) -> list:
    """Write ``fig`` in each format next to ``output``; returns the paths written."""
    written = []
    for path in output_paths(output, formats):
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=path.suffix[1:], dpi=dpi, bbox_inches="tight")
        written.append(path)
    return written
