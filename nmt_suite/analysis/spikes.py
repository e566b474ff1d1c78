"""Gradient-explosion (spike) detection in a per-update gradient-norm series.

Rule: update *t* is a spike when its norm is at least ``factor`` times the median of the
(finite) norms of the ``window`` updates before it, and at least ``min_history`` earlier
norms exist. The median of the preceding window is robust: a spike does not raise the
baseline for its successors the way a mean would, a slow trend (the early decline of the
norm, warm-up) moves the baseline with it, and only the past is used, so the rule works
online too. Flagged updates closer than ``merge_within`` updates to each other form one
event, reported at its largest factor (a burst is one explosion, not five).

Defaults: ``window=50``, ``factor=2.5``, ``min_history=10``, ``merge_within=5``.
Non-finite norms (fp16/AMP overflows, logged with ``gnorm: null``) are not part of any
baseline and are not spikes; :func:`overflow_updates` lists them.

CLI::

    python -m nmt_suite.analysis.spikes runs/ted2020/strong/gnorm.jsonl [--factor 2.5] [--top 5] [--json]
"""
import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass

DEFAULT_WINDOW = 50
DEFAULT_FACTOR = 2.5
DEFAULT_MIN_HISTORY = 10
DEFAULT_MERGE_WITHIN = 5


@dataclass(frozen=True)
class Spike:
    update: int
    gnorm: float
    baseline: float  # median of the preceding window
    factor: float  # gnorm / baseline


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def detect_spikes(gnorms, updates=None, *, window=DEFAULT_WINDOW, factor=DEFAULT_FACTOR,
                  min_history=DEFAULT_MIN_HISTORY, merge_within=DEFAULT_MERGE_WITHIN) -> list:
    """Spikes of ``gnorms`` (floats; None/NaN/inf are skipped) in update order.

    ``updates`` numbers the values (default 1, 2, ...); ``merge_within`` is in those units.
    """
    gnorms = list(gnorms)
    updates = list(range(1, len(gnorms) + 1)) if updates is None else list(updates)
    if len(updates) != len(gnorms):
        raise ValueError(f"{len(gnorms)} norms but {len(updates)} update numbers")
    if window < 1 or min_history < 1 or factor <= 1:
        raise ValueError("need window >= 1, min_history >= 1 and factor > 1")
    history, flagged = [], []
    for update, value in zip(updates, gnorms):
        if not _finite(value):
            continue
        recent = history[-window:]
        if len(recent) >= min_history:
            baseline = statistics.median(recent)
            if baseline > 0 and value >= factor * baseline:
                flagged.append(Spike(update, value, baseline, value / baseline))
        history.append(value)
    events = []
    for spike in flagged:
        if events and spike.update - events[-1][-1].update <= merge_within:
            events[-1].append(spike)
        else:
            events.append([spike])
    return [max(event, key=lambda s: s.factor) for event in events]


def top_spikes(spikes, n: int) -> list:
    """The ``n`` largest spikes by factor, returned in update order."""
    return sorted(sorted(spikes, key=lambda s: -s.factor)[:n], key=lambda s: s.update)


def overflow_updates(records) -> list:
    """Update numbers of logged attempts whose norm was not finite."""
    return [r["update"] for r in records if r.get("overflow")]


def spikes_in_log(records, **options) -> list:
    """:func:`detect_spikes` over the applied updates of gnorm-log records."""
    applied = [r for r in records if not r.get("overflow")]
    return detect_spikes([r["gnorm"] for r in applied], [r["update"] for r in applied], **options)


def add_detection_options(parser: argparse.ArgumentParser):
    """The detector's knobs, shared by this CLI and analysis/plot_gnorm.py."""
    group = parser.add_argument_group("spike detection")
    group.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                       help="baseline = median of this many preceding norms (default %(default)s)")
    group.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                       help="spike when gnorm >= FACTOR x baseline (default %(default)s)")
    group.add_argument("--min-history", type=int, default=DEFAULT_MIN_HISTORY,
                       help="no spike before this many norms were seen (default %(default)s)")
    group.add_argument("--merge-within", type=int, default=DEFAULT_MERGE_WITHIN,
                       help="flagged updates this close form one event (default %(default)s)")


def detection_options(args) -> dict:
    return dict(window=args.window, factor=args.factor, min_history=args.min_history,
                merge_within=args.merge_within)


def main(argv=None) -> int:
    from nmt_suite.gnorm_log import GnormLogError, read_gnorm_log

    parser = argparse.ArgumentParser(
        prog="python -m nmt_suite.analysis.spikes",
        description="List gradient-norm explosions in a gnorm.jsonl written by the tracker.")
    parser.add_argument("gnorm_log", help="gnorm.jsonl (from --task translation_ext)")
    add_detection_options(parser)
    parser.add_argument("--top", type=int, default=0,
                        help="only the N largest spikes (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        records = read_gnorm_log(args.gnorm_log)
        spikes = spikes_in_log(records, **detection_options(args))
    except (OSError, GnormLogError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.top > 0:
        spikes = top_spikes(spikes, args.top)
    overflows = overflow_updates(records)
    if args.json:
        print(json.dumps({"spikes": [asdict(s) for s in spikes], "overflows": overflows}))
        return 0
    print(f"{len(spikes)} spike(s) in {len(records)} records of {args.gnorm_log} "
          f"(gnorm >= {args.factor:g} x median of previous {args.window})")
    if spikes:
        print(f"{'update':>8} {'gnorm':>10} {'baseline':>10} {'factor':>7}")
        for s in spikes:
            print(f"{s.update:>8} {s.gnorm:>10.4g} {s.baseline:>10.4g} {s.factor:>7.2f}")
    if overflows:
        print(f"{len(overflows)} overflow(s) (non-finite norm, update skipped) at updates "
              + ", ".join(map(str, overflows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
