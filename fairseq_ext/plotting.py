"""Output conventions shared by the analysis/plot_*.py scripts.

``-o plots/gnorm.png --format png svg`` writes ``plots/gnorm.png`` and ``plots/gnorm.svg``
(the stem of ``-o``, one file per format), each through a temporary name and a rename, so an
interrupted run never leaves half a figure under the final name.
"""
import argparse
import logging
import os
from pathlib import Path

import matplotlib

# fairseq's import sets the root logger to DEBUG (see quiet_logging); matplotlib's own debug
# output (font search, backend loading) is never wanted here.
logging.getLogger("matplotlib").setLevel(logging.WARNING)
matplotlib.use("Agg")  # files only; no display needed (CI, ssh)

FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMATS = ("png", "svg")


def quiet_logging():
    """Importing fairseq runs ``logging.basicConfig(level=DEBUG)`` (in one of its wav2vec
    modules), which floods a plotting script's stderr with matplotlib's font search."""
    logging.getLogger().setLevel(logging.WARNING)


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=path.suffix[1:], dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
        written.append(path)
    return written
