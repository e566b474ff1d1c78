"""Paired significance of finished runs against a baseline, with sacrebleu's own tests (scripts/compare_runs.py).

``compare_runs.py BASE RUN [RUN ...]``: per split (``--split``, default test) each run's BLEU
(tokenize zh) and chrF, the metrics the pipeline scores with, as its score, the bootstrap estimate
of its mean and the 95% confidence interval, and the p-value of its difference from the first run,
the baseline. The test is sacrebleu's ``PairedTest``, the one ``sacrebleu REF -i BASE RUN
--paired-bs`` runs: paired bootstrap resampling (``--paired bs``, 1000 resamples) or paired
approximate randomization (``--paired ar``, 10000 trials; its confidence intervals from 1000
bootstrap resamples); ``--n`` sets the resamples or trials. The resampling seed is sacrebleu's
(12345 unless ``SACREBLEU_SEED`` says otherwise), recorded in the printed signatures.

A run is a run dir ``runs/<corpus>/<rung>/``: its ``hyp.<split>.zh`` is scored against
``<data_dir>/ref/<split>.zh``, ``data_dir`` read from its results.json. All runs compared must
have references of the same content.

Several seeds per system: ``compare_runs.py A1,A2,A3 B1,B2,B3`` (comma-separated run dirs are the
seeds of one system; ``--groups`` instead forms the systems from the runs given, as
``summarize_runs.py --by-seed`` does). One test on one seed cannot tell a system from a lucky
seed, so the rule is: **a difference is real only when every seed-matched paired test (the two
systems' runs with the same ``train.seed``) gives p < 0.05 and the systems' per-seed scores do
not overlap (the lowest of the better system is above the highest of the worse)**. It is applied
to BLEU and to chrF separately, each with its own p-values and scores.
"""
import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from sacrebleu.significance import PairedTest

from nmt_suite.argparsing import OneLineErrorParser
from nmt_suite.files import atomic_write_json, read_json, sha256_file
from nmt_suite.names import is_plain_name
from nmt_suite.prep.extra_tests import RESERVED as EXTRA_RESERVED
from nmt_suite.rungs.evaluate import read_lines, scoring_metrics, split_files
from nmt_suite.rungs.results import SPLITS, ResultsSchemaError, RunResults
from nmt_suite.rungs.summarize import markdown_table, mean_sd, seed_groups, seed_of

PROG = "compare_runs"
ALPHA = 0.05
RULE = (f"a difference is real only when every seed-matched paired test gives p < {ALPHA} and the systems' "
        "per-seed scores do not overlap (min of the better > max of the worse)")
TESTS = {"bs": "paired bootstrap resampling", "ar": "paired approximate randomization"}
METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF"}


class CompareError(ValueError):
    """Bad input; the message names the file or the run."""


@dataclasses.dataclass
class Run:
    name: str             # the run dir as given
    results: RunResults
    hyps: dict            # split -> hypothesis lines
    refs: dict            # split -> path of the reference file


def load_run(run_dir: Path, splits) -> Run:
    """The run's results.json and hypotheses, checked against its references' line count."""
    if not run_dir.is_dir():
        raise CompareError(f"run dir {run_dir} not found")
    path = run_dir / "results.json"
    if not path.is_file():
        raise CompareError(f"{path} not found")
    try:
        results = RunResults.from_json(read_json(path), where=str(path))
    except json.JSONDecodeError as err:
        raise CompareError(f"{path}: not valid JSON ({err})") from None
    except ResultsSchemaError as err:
        raise CompareError(str(err)) from None
    run = Run(str(run_dir), results, {}, {})
    for split in splits:
        hyp_path, ref_path = run_dir / f"hyp.{split}.zh", split_files(results.data_dir, split, "zh")
        for needed in (hyp_path, ref_path):
            if not needed.is_file():
                raise CompareError(f"{needed} not found")
        run.hyps[split], n_refs = read_lines(hyp_path), len(read_lines(ref_path))
        if len(run.hyps[split]) != n_refs:
            raise CompareError(f"{hyp_path}: {len(run.hyps[split])} lines for {n_refs} references in {ref_path}")
        run.refs[split] = ref_path
    return run


def shared_references(runs: list, split: str) -> list:
    """The reference lines all ``runs`` are scored against; CompareError when they differ."""
    digests = {}
    for run in runs:
        digest = digests.setdefault(run.refs[split], sha256_file(run.refs[split]))
        if digest != digests[runs[0].refs[split]]:
            raise CompareError(f"{runs[0].name} and {run.name} have different {split} references "
                               f"({runs[0].refs[split]}, {run.refs[split]})")
    return read_lines(runs[0].refs[split])


def paired_test(named_hyps: list, refs: list, test: str, n: int) -> tuple:
    """sacrebleu's PairedTest of ``[(name, hypotheses), ...]``, the first the baseline.

    Returns (signatures, one dict per system: metric -> score, mean, ci, p_value (None for the
    baseline), resamples or trials used).
    """
    metrics = scoring_metrics()
    # n_ar_confidence: the CIs of an AR test from sacrebleu's default 1000 bootstrap resamples
    # (0); -1 for bs, whose CIs come from its own resamples
    tester = PairedTest(named_hyps, metrics, references=[refs], test_type=test, n_samples=n,
                        n_ar_confidence=0 if test == "ar" else -1)
    signatures, scores = tester()
    names = [name for name in scores if name != "System"]  # sacrebleu's names (BLEU, chrF2), in metrics' order
    rows = [{metric: {field: None if value is None else float(value) for field, value in vars(result).items()}
             for metric, result in zip(metrics, results)} for results in zip(*(scores[name] for name in names))]
    return {metric: signatures[name].format() for metric, name in zip(metrics, names)}, rows, tester.n_samples


def compare(runs: list, split: str, test: str, n: int) -> dict:
    """Every run against the first on ``split``."""
    refs = shared_references(runs, split)
    signatures, rows, n_used = paired_test([(run.name, run.hyps[split]) for run in runs], refs, test, n)
    return {"split": split, "sentences": len(refs), "test": test, "n": n_used, "signatures": signatures,
            "baseline": runs[0].name, "runs": [{"run": run.name, **row} for run, row in zip(runs, rows)]}


def seed_runs(system: list) -> dict:
    """train.seed -> run of one system; CompareError when two runs share a seed."""
    by_seed = {}
    for run in system:
        seed = seed_of(run.results)
        if seed in by_seed:
            raise CompareError(f"{by_seed[seed].name} and {run.name} both have train.seed {seed}: "
                               "a system needs one run per seed")
        by_seed[seed] = run
    return by_seed


def _spread(scores: list) -> dict:
    return {"scores": scores, "mean": statistics.mean(scores),
            "sd": statistics.stdev(scores) if len(scores) > 1 else None}


def verdict(baseline_scores: list, system_scores: list, p_values: list) -> dict:
    """The rule of the module docstring for one metric."""
    better, worse = sorted([baseline_scores, system_scores], key=statistics.mean, reverse=True)
    separated, max_p = min(better) > max(worse), max(p_values)
    return {"max_p": max_p, "separated": separated, "real": max_p < ALPHA and separated}


def compare_systems(systems: list, names: list, split: str, test: str, n: int) -> dict:
    """Systems of several seeds each: seed-matched paired tests against the first system, spread over seeds."""
    refs = shared_references([run for system in systems for run in system], split)
    metrics = scoring_metrics()
    spreads = [{metric: _spread([metrics[metric].corpus_score(run.hyps[split], [refs]).score for run in system])
                for metric in METRIC_NAMES} for system in systems]
    out_systems = [{"system": name, "runs": [run.name for run in system],
                    "seeds": [seed_of(run.results) for run in system], **spread}
                   for name, system, spread in zip(names, systems, spreads)]
    baseline_seeds, comparisons, signatures, n_used = seed_runs(systems[0]), [], None, n
    for name, system, spread in zip(names[1:], systems[1:], spreads[1:]):
        seeds = seed_runs(system)
        matched = [seed for seed in baseline_seeds if seed in seeds]
        if not matched:
            raise CompareError(f"{names[0]} and {name} have no train.seed in common: nothing to pair")
        pairs = []
        for seed in matched:
            base_run, run = baseline_seeds[seed], seeds[seed]
            signatures, (base_row, row), n_used = paired_test(
                [(base_run.name, base_run.hyps[split]), (run.name, run.hyps[split])], refs, test, n)
            pairs.append({"seed": seed, "baseline_run": base_run.name, "run": run.name,
                          **{metric: {"baseline": base_row[metric]["score"], "score": row[metric]["score"],
                                      "baseline_ci": base_row[metric]["ci"], "ci": row[metric]["ci"],
                                      "p_value": row[metric]["p_value"]} for metric in METRIC_NAMES}})
        unmatched = [seed for seed in [*baseline_seeds, *seeds] if seed not in matched]
        comparisons.append({"system": name, "baseline": names[0], "pairs": pairs, "unmatched_seeds": unmatched,
                            **{metric: verdict(spreads[0][metric]["scores"], spread[metric]["scores"],
                                               [pair[metric]["p_value"] for pair in pairs])
                               for metric in METRIC_NAMES}})
    return {"split": split, "sentences": len(refs), "test": test, "n": n_used, "signatures": signatures,
            "rule": RULE, "systems": out_systems, "comparisons": comparisons}


# ------------------------------------------------------------------ Markdown

def _p(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def _header(report: dict) -> str:
    trials = "resamples" if report["test"] == "bs" else "trials"
    return f"## {report['split']} ({report['sentences']} sentences, {TESTS[report['test']]}, {report['n']} {trials})"


def _signatures(report: dict) -> list:
    return ["", *(f"{METRIC_NAMES[metric]} signature: {sig}" for metric, sig in report["signatures"].items())]


def runs_markdown(report: dict) -> str:
    columns = ["run", "BLEU (μ ± 95% CI)", "p (BLEU)", "chrF (μ ± 95% CI)", "p (chrF)"]
    rows = [[run["run"] + (" (baseline)" if i == 0 else ""),
             *(cell for metric in METRIC_NAMES for cell in (
                 f"{run[metric]['score']:.2f} ({run[metric]['mean']:.2f} ± {run[metric]['ci']:.2f})",
                 _p(run[metric]["p_value"])))] for i, run in enumerate(report["runs"])]
    return "\n".join([_header(report), "", *markdown_table(columns, rows), "",
                      f"p: each run against the baseline {report['baseline']}; p < {ALPHA} means the difference "
                      "is unlikely to be chance on this test set.", *_signatures(report)]) + "\n"


def _range(spread: dict) -> str:
    return f"{min(spread['scores']):.2f}–{max(spread['scores']):.2f}"


def systems_markdown(report: dict) -> str:
    columns = ["system", "runs", "seeds", "BLEU mean ± sd", "BLEU range", "chrF mean ± sd", "chrF range"]
    rows = [[system["system"] + (" (baseline)" if i == 0 else ""), ", ".join(system["runs"]),
             ", ".join(map(str, system["seeds"])),
             *(cell for metric in METRIC_NAMES for cell in (mean_sd(system[metric]['scores']), _range(system[metric])))]
            for i, system in enumerate(report["systems"])]
    lines = [_header(report), "", *markdown_table(columns, rows)]
    for comparison in report["comparisons"]:
        lines += ["", f"### {comparison['system']} against {comparison['baseline']}: paired tests by seed", ""]
        lines += markdown_table(["seed", "baseline run", "run", "BLEU", "p (BLEU)", "chrF", "p (chrF)"], [
            [str(pair["seed"]), pair["baseline_run"], pair["run"],
             *(cell for metric in METRIC_NAMES for cell in (
                 f"{pair[metric]['baseline']:.2f} → {pair[metric]['score']:.2f}", _p(pair[metric]["p_value"])))]
            for pair in comparison["pairs"]])
        if comparison["unmatched_seeds"]:
            lines.append(f"\nunmatched seeds (not tested): {', '.join(map(str, comparison['unmatched_seeds']))}")
        lines.append("")
        for metric, name in METRIC_NAMES.items():
            result = comparison[metric]
            verdict_text = "real" if result["real"] else "not shown to be real"
            lines.append(f"- {name}: {verdict_text} (max p = {result['max_p']:.4f}; per-seed scores "
                         f"{'do not overlap' if result['separated'] else 'overlap'})")
    return "\n".join([*lines, "", f"Rule: {RULE}.", *_signatures(report)]) + "\n"


# ------------------------------------------------------------------ command line

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run dirs runs/<corpus>/<rung>/, the first the baseline; RUN1,RUN2,...: the seeds "
                             "of one system")
    parser.add_argument("--split", action="append", metavar="SPLIT",
                        help="valid, test, an extra test set of the runs (extra_tests) or several, comma-separated "
                             "(repeatable; default test)")
    parser.add_argument("--paired", choices=tuple(TESTS), default="bs",
                        help="bs: paired bootstrap resampling (default), ar: paired approximate randomization")
    parser.add_argument("--n", type=int, default=0,
                        help="bootstrap resamples or AR trials (default sacrebleu's: 1000 for bs, 10000 for ar)")
    parser.add_argument("--groups", action="store_true",
                        help="form systems from the runs given: runs differing only in train.seed and rung name")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers to FILE")
    return parser


def _splits(parser, values) -> list:
    splits = [s for value in values or ["test"] for s in value.split(",") if s]
    for split in splits:
        if split not in SPLITS and (not is_plain_name(split) or split in EXTRA_RESERVED):
            parser.error(f"--split {split!r}: expected {', '.join(SPLITS)} or the name of an extra test set")
    return list(dict.fromkeys(splits))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    splits = _splits(parser, args.split)
    if args.n < 0:
        parser.error(f"--n must be 0 (sacrebleu's default) or more, got {args.n}")
    commas = any("," in arg for arg in args.runs)
    if args.groups and commas:
        parser.error("--groups forms the systems itself: give run dirs without commas")
    grouped = args.groups or commas
    run_dirs = [[Path(d) for d in arg.split(",") if d] for arg in args.runs]
    flat = [d for system in run_dirs for d in system]
    if len(set(flat)) < len(flat):
        parser.error(f"a run dir is given twice: {next(str(d) for d in flat if flat.count(d) > 1)}")
    try:
        loaded = {d: load_run(d, splits) for d in flat}
        if not grouped:
            if len(flat) < 2:
                parser.error(f"need at least two runs to compare, got {len(flat)}")
            reports = [compare([loaded[d] for d in flat], split, args.paired, args.n) for split in splits]
            text = "\n".join(map(runs_markdown, reports))
        else:
            systems = (seed_groups([loaded[d] for d in flat], lambda run: run.results) if args.groups
                       else [[loaded[d] for d in system] for system in run_dirs])
            if len(systems) < 2:
                parser.error(f"need at least two systems to compare, got {len(systems)}")
            names = [system[0].results.rung for system in systems]
            if len(set(names)) < len(names):  # the same rung name on two corpora: the run dirs tell them apart
                names = [system[0].name for system in systems]
            reports = [compare_systems(systems, names, split, args.paired, args.n) for split in splits]
            text = "\n".join(map(systems_markdown, reports))
    except CompareError as err:
        parser.error(str(err))
    if args.json is not None:
        try:
            atomic_write_json(args.json, {report["split"]: report for report in reports})
        except OSError as err:
            parser.error(f"cannot write {args.json}: {err.strerror}")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
