"""One Markdown table over every ``runs/<corpus>/<rung>/results.json`` (scripts/summarize_runs.py).

By default one row per run. ``--by-seed``: one row per system, the runs of one system being
those that differ only in their seed (each seed is its own run dir, e.g. ``rung=strong-s2
train.seed=2`` writes ``runs/<corpus>/strong-s2/``): same corpus and the same ``config`` once
``train.seed``, the ``rung`` name and the speed settings (threads, verbose) are left out.
"""
import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

from nmt_suite.files import canonical_json, read_json
from nmt_suite.rungs.results import ResultsSchemaError, RunResults

COLUMNS = ("corpus", "rung", "test BLEU", "test chrF", "valid BLEU", "params", "updates", "wall time",
           "tok/s")
SEED_COLUMNS = ("corpus", "system", "n seeds", "test BLEU (mean ± sd)", "test chrF (mean ± sd)", "seeds")


def _score(results: RunResults, split, metric):
    entry = results.scores.get(split)
    return "–" if entry is None else f"{entry[metric]:.2f}"


def _duration(seconds) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def row(results: RunResults) -> list:
    tok_s = results.tokens_per_s
    return [results.corpus, results.rung, _score(results, "test", "bleu"), _score(results, "test", "chrf"),
            _score(results, "valid", "bleu"), f"{results.params / 1e6:.2f}M", str(results.updates),
            _duration(results.wall_time_s["total"]), "–" if tok_s is None else f"{tok_s:,.0f}"]


def seed_of(results: RunResults):
    """The run's ``train.seed`` (None when its config sets none)."""
    return (results.config.get("train") or {}).get("seed")


# settings that name a run or set its speed, not what it learns
NOT_THE_SYSTEM = ("rung", "threads", "verbose")


def system_key(results: RunResults) -> tuple:
    """What the seeds of one system share: the corpus and the config without ``train.seed`` and
    NOT_THE_SYSTEM."""
    config = copy.deepcopy(results.config)
    for name in NOT_THE_SYSTEM:
        config.pop(name, None)
    (config.get("train") or {}).pop("seed", None)
    return results.corpus, canonical_json(config)


def seed_groups(items, results_of=lambda item: item) -> list:
    """``items`` grouped by system (:func:`system_key` of ``results_of(item)``), in order of first appearance."""
    groups = {}
    for item in items:
        groups.setdefault(system_key(results_of(item)), []).append(item)
    return list(groups.values())


def mean_sd(values) -> str:
    """``mean ± sd`` (sample sd, n - 1); the sd is "–" for one value, the whole "–" for none."""
    if not values:
        return "–"
    sd = f"{statistics.stdev(values):.2f}" if len(values) > 1 else "–"
    return f"{statistics.mean(values):.2f} ± {sd}"


def seed_row(group: list) -> list:
    def test_scores(metric):
        return [r.scores["test"][metric] for r in group if r.scores.get("test") is not None]

    seeds = ", ".join(str(seed_of(r)) for r in group)
    return [group[0].corpus, group[0].rung, str(len(group)), mean_sd(test_scores("bleu")),
            mean_sd(test_scores("chrf")), seeds]


def markdown_table(columns, rows) -> list:
    """The lines of a Markdown table: header, rule, one line per row of cells."""
    return ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def read_runs(runs_dir: Path) -> tuple:
    """(the RunResults of every readable ``*/*/results.json``, problems with the files left out)."""
    runs, problems = [], []
    for path in sorted(Path(runs_dir).glob("*/*/results.json")):
        try:
            runs.append(RunResults.from_json(read_json(path), where=str(path)))
        except (json.JSONDecodeError, ResultsSchemaError) as err:
            problems.append(f"{path}: {err}")
    return runs, problems


def summarize(runs_dir: Path, by_seed: bool = False) -> tuple:
    """(Markdown table, list of problems with files that were left out)."""
    runs, problems = read_runs(runs_dir)
    table = (markdown_table(SEED_COLUMNS, [seed_row(group) for group in seed_groups(runs)]) if by_seed
             else markdown_table(COLUMNS, [row(results) for results in runs]))
    return "\n".join(table) + "\n", problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "runs",
                        help="default: %(default)s")
    parser.add_argument("--by-seed", action="store_true",
                        help="one row per system: runs that differ only in train.seed (and rung name), "
                             "test scores as mean ± sample sd")
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"summarize_runs: {args.runs_dir} is not a directory", file=sys.stderr)
        return 1
    table, problems = summarize(args.runs_dir, args.by_seed)
    sys.stdout.write(table)
    for problem in problems:
        print(f"summarize_runs: skipped {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
