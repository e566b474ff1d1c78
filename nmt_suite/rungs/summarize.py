"""One Markdown table over every ``runs/<corpus>/<rung>/results.json`` (scripts/summarize_runs.py)."""
import argparse
import json
import sys
from pathlib import Path

from nmt_suite.files import read_json
from nmt_suite.rungs.results import ResultsSchemaError, RunResults

COLUMNS = ("corpus", "rung", "test BLEU", "test chrF", "valid BLEU", "params", "updates", "wall time",
           "tok/s")


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


def summarize(runs_dir: Path) -> tuple:
    """(Markdown table, list of problems with files that were left out)."""
    rows, problems = [], []
    for path in sorted(Path(runs_dir).glob("*/*/results.json")):
        try:
            rows.append(row(RunResults.from_json(read_json(path), where=str(path))))
        except (json.JSONDecodeError, ResultsSchemaError) as err:
            problems.append(f"{path}: {err}")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n", problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "runs",
                        help="default: %(default)s")
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        print(f"summarize_runs: {args.runs_dir} is not a directory", file=sys.stderr)
        return 1
    table, problems = summarize(args.runs_dir)
    sys.stdout.write(table)
    for problem in problems:
        print(f"summarize_runs: skipped {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
