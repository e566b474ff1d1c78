#!/usr/bin/env python
"""Training curves of a run: train and valid loss, valid BLEU (when logged) and lr vs. updates.

    python analysis/plot_curves.py runs/ted2020/strong -o runs/ted2020/strong/plots/curves.png

Reads the run's tensorboard events (``RUN_DIR/tensorboard``, written by fairseq-train
``--tensorboard-logdir``: subdirectories ``train_inner``, ``train`` and ``valid``) with
tensorboard's EventAccumulator; when there are none, parses fairseq's log
(``RUN_DIR/train.log``, ``--log-format simple``, ``tqdm`` or ``json``). The x axis is
fairseq's ``num_updates``. Train loss is the per-log-interval value (``train_inner``), or the
per-epoch value when no interval was logged. Losses are fairseq's (base 2). Where a resumed
run logged an update twice, the later value wins.
"""
import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib.pyplot as plt

from nmt_suite.analysis.figures import add_output_options, save_figure

SERIES = ("train_loss", "valid_loss", "valid_bleu", "lr")
# (series, fairseq logging tag, metric); the first source present for a series is used
SOURCES = (
    ("train_loss", "train_inner", "loss"), ("train_loss", "train", "loss"),
    ("valid_loss", "valid", "loss"), ("valid_bleu", "valid", "bleu"),
    ("lr", "train_inner", "lr"), ("lr", "train", "lr"),
)


class NoCurvesError(ValueError):
    """Neither tensorboard events nor a fairseq log with losses were found."""


def _series(points) -> list:
    """Sorted (update, value) pairs; for a repeated update the last logged value."""
    return sorted(dict(points).items())


def _select(metrics) -> dict:
    """``metrics[(tag, name)] -> points`` to the plotted series."""
    curves = {}
    for series, tag, name in SOURCES:
        if series not in curves and metrics.get((tag, name)):
            curves[series] = _series(metrics[(tag, name)])
    return curves


def curves_from_tensorboard(tensorboard_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = {}
    for tag in {tag for _, tag, _ in SOURCES}:
        directory = Path(tensorboard_dir) / tag
        if not directory.is_dir():
            continue
        accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})
        accumulator.Reload()
        for name in accumulator.Tags().get("scalars", []):
            events = sorted(accumulator.Scalars(name), key=lambda e: e.wall_time)
            metrics[(tag, name)] = [(e.step, e.value) for e in events]
    return _select(metrics)


# fairseq's progress lines, with or without the "| INFO | <tag> |" logging prefix (--log-file
# writes bare messages); the tag is recovered from the message itself.
_INNER = re.compile(r"epoch \d+:\s+\d+ / \d+ (.*)$")  # simple/tqdm: per-interval train stats
_PIPES = re.compile(r"epoch \d+ \| (.*)$")  # end-of-epoch train stats and validation results
_JSON = re.compile(r"(\{\"epoch\".*\})\s*$")
_VALID_PREFIX = re.compile(r"^valid on '([^']+)' subset$")


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _parse_line(line):
    """(tag, {metric: value}) of a fairseq progress line, or None.

    Tags as in tensorboard: ``train_inner`` (every --log-interval), ``train`` (end of
    epoch), and the validation subset's name (``valid``)."""
    if match := _JSON.search(line):
        stats = json.loads(match.group(1))
        # JsonProgressBar.print prefixes keys with the tag (valid_loss, train_loss ...); .log does not
        tag = next((k[: -len("_num_updates")] for k in stats if k.endswith("_num_updates")), None)
        if tag is None:
            return "train_inner", {k: _number(v) for k, v in stats.items()}
        return tag, {k[len(tag) + 1:]: _number(v) for k, v in stats.items() if k.startswith(tag + "_")}
    if match := _INNER.search(line):
        pairs = (item.split("=", 1) for item in match.group(1).split(", ") if "=" in item)
        return "train_inner", {k.strip(): _number(v) for k, v in pairs}
    if match := _PIPES.search(line):
        fields = match.group(1).split(" | ")
        tag = "train"
        if valid := _VALID_PREFIX.match(fields[0]):
            tag, fields = valid.group(1), fields[1:]
        pairs = (item.rsplit(" ", 1) for item in fields if " " in item)
        return tag, {k.strip(): _number(v) for k, v in pairs}
    return None


def curves_from_log(log_path) -> dict:
    metrics = {}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parsed = _parse_line(line.rstrip("\n"))
            if parsed is None:
                continue
            tag, stats = parsed
            step = stats.get("num_updates")
            if step is None:
                continue
            for name, value in stats.items():
                if value is not None and name != "num_updates":
                    metrics.setdefault((tag, name), []).append((int(step), value))
    return _select(metrics)


def last_validation(log_path, subset="valid") -> dict:
    """The metrics of the last validation of *subset* in a fairseq-train log (``{}`` when there is none)."""
    last = {}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parsed = _parse_line(line.rstrip("\n"))
            if parsed and parsed[0] == subset and parsed[1].get("num_updates") is not None:
                last = parsed[1]
    return last


def load_curves(run_dir, tensorboard_dir=None, log_path=None):
    """(curves, source description) of a run, from tensorboard if possible, else its log."""
    run_dir = Path(run_dir)
    tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir else run_dir / "tensorboard"
    log_path = Path(log_path) if log_path else run_dir / "train.log"
    if tensorboard_dir.is_dir():
        curves = curves_from_tensorboard(tensorboard_dir)
        if "train_loss" in curves or "valid_loss" in curves:
            return curves, f"tensorboard events in {tensorboard_dir}"
    if log_path.is_file():
        curves = curves_from_log(log_path)
        if "train_loss" in curves or "valid_loss" in curves:
            return curves, f"fairseq log {log_path}"
    raise NoCurvesError(f"no losses found: neither tensorboard events in {tensorboard_dir} "
                        f"nor fairseq log lines in {log_path}")


def build_figure(curves, title=None):
    """Loss panel, BLEU panel (only when valid BLEU was logged), lr panel; shared x axis."""
    panels = ["loss"] + (["bleu"] if "valid_bleu" in curves else []) + (["lr"] if "lr" in curves else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), sharex=True,
                             squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))

    def draw(ax, series, label, **style):
        if series in curves:
            x, y = zip(*curves[series])
            ax.plot(x, y, label=label, **style)

    draw(axes["loss"], "train_loss", "train loss", color="tab:blue", lw=1)
    draw(axes["loss"], "valid_loss", "valid loss", color="tab:orange", marker="o", ms=3)
    axes["loss"].set_ylabel("loss (base 2)")
    axes["loss"].legend()
    if "bleu" in axes:
        draw(axes["bleu"], "valid_bleu", "valid BLEU", color="tab:green", marker="o", ms=3)
        axes["bleu"].set_ylabel("BLEU")
        axes["bleu"].legend()
    if "lr" in axes:
        draw(axes["lr"], "lr", "learning rate", color="tab:purple", lw=1)
        axes["lr"].set_ylabel("lr")
        axes["lr"].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes.values():
        ax.grid(alpha=0.3)
    list(axes.values())[-1].set_xlabel("update")
    list(axes.values())[0].set_title(title or "Training curves")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="runs/<corpus>/<rung>")
    add_output_options(parser, default_help="RUN_DIR/plots/curves.png")
    parser.add_argument("--tensorboard-dir", type=Path,
                        help="tensorboard log dir (default: RUN_DIR/tensorboard)")
    parser.add_argument("--log", type=Path, help="fairseq log (default: RUN_DIR/train.log)")
    parser.add_argument("--title", help="figure title (default: the run directory)")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"error: run directory not found: {args.run_dir}", file=sys.stderr)
        return 2
    try:
        curves, source = load_curves(args.run_dir, args.tensorboard_dir, args.log)
    except (OSError, NoCurvesError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fig = build_figure(curves, title=args.title or f"{args.run_dir} ({source.split(' ')[0]})")
    output = args.output or args.run_dir / "plots" / "curves.png"
    for path in save_figure(fig, output, args.format, args.dpi):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
