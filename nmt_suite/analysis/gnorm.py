#!/usr/bin/env python
"""Gradient norm per update, with the clip threshold and the largest explosions circled.

    python analysis/plot_gnorm.py runs/ted2020/strong/checkpoints/gnorm.jsonl -o plots/gnorm.png

Reads the per-update log of ``--task translation_ext`` (fairseq_ext.gnorm_tracker), draws
the norm before clipping for every update, the ``--clip-norm`` threshold as a dashed line,
overflowed (skipped) attempts as grey vertical lines, and a circle around each of the
``--top`` largest explosions found by nmt_suite.analysis.spikes, annotated with its update number
and its factor over the running median (the HW5 report asks for two).
"""
import argparse
import sys

import matplotlib.pyplot as plt

from nmt_suite.gnorm_log import GnormLogError, read_gnorm_log
from nmt_suite.analysis.figures import add_output_options, save_figure
from nmt_suite.analysis.spikes import (add_detection_options, detection_options, overflow_updates,
                                spikes_in_log, top_spikes)

CIRCLE_GID = "spike-circle"  # gid of each circle's artist (also the SVG element id prefix)


def build_figure(records, *, top=2, log_scale=False, title=None, detection=None):
    """The figure for gnorm-log ``records``; returns (figure, circled spikes)."""
    applied = [r for r in records if not r.get("overflow")]
    if not applied:
        raise ValueError("the log has no applied update to plot")
    updates = [r["update"] for r in applied]
    gnorms = [r["gnorm"] for r in applied]
    spikes = top_spikes(spikes_in_log(records, **(detection or {})), top)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(updates, gnorms, lw=0.8, color="tab:blue", label="gradient norm (before clipping)")

    clip_norms = [r.get("clip_norm", 0) or 0 for r in applied]
    if any(c > 0 for c in clip_norms):
        if len(set(clip_norms)) == 1:
            ax.axhline(clip_norms[0], color="tab:red", ls="--", lw=1,
                       label=f"clip threshold ({clip_norms[0]:g})")
        else:
            ax.step(updates, clip_norms, where="post", color="tab:red", ls="--", lw=1,
                    label="clip threshold")
        clipped = sum(bool(r.get("clipped")) for r in applied)
        ax.plot([], [], " ", label=f"{clipped} of {len(applied)} updates clipped")

    for i, update in enumerate(overflow_updates(records)):
        ax.axvline(update, color="0.6", lw=0.6, zorder=0,
                   label="overflow (update skipped)" if i == 0 else None)

    if log_scale:
        ax.set_yscale("log")
    for k, spike in enumerate(spikes, 1):
        ax.plot([spike.update], [spike.gnorm], "o", ms=22, mfc="none", mec="tab:red", mew=2,
                gid=f"{CIRCLE_GID}-{k}", label="explosion" if k == 1 else None)
        ax.annotate(f"update {spike.update}\n\u00d7{spike.factor:.1f}",
                    xy=(spike.update, spike.gnorm), xytext=(0, 14), textcoords="offset points",
                    ha="center", va="bottom", color="tab:red", fontsize=9)
    if spikes:
        # headroom so that the label of the highest explosion stays inside the axes
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * (high / low) ** 0.2 if log_scale else high + 0.2 * (high - low))

    ax.set_xlabel("update")
    ax.set_ylabel("gradient norm" + (" (log scale)" if log_scale else ""))
    ax.set_title(title or "Gradient norm per update")
    ax.margins(x=0.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, markerscale=0.5)
    fig.tight_layout()
    return fig, spikes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gnorm_log", help="gnorm.jsonl written by --task translation_ext")
    add_output_options(parser)
    parser.add_argument("--log-scale", action="store_true", help="logarithmic y axis")
    parser.add_argument("--top", type=int, default=2,
                        help="circle this many of the largest explosions (default %(default)s)")
    parser.add_argument("--title", help="figure title")
    add_detection_options(parser)
    args = parser.parse_args(argv)
    try:
        records = read_gnorm_log(args.gnorm_log)
        fig, spikes = build_figure(records, top=args.top, log_scale=args.log_scale,
                                   title=args.title, detection=detection_options(args))
    except (OSError, GnormLogError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {args.gnorm_log}: {err}", file=sys.stderr)
        return 2
    for path in save_figure(fig, args.output, args.format, args.dpi):
        print(path)
    for s in spikes:
        print(f"circled: update {s.update} gnorm {s.gnorm:.4g} = {s.factor:.1f} x median {s.baseline:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
