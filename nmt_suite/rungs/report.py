"""A results document generated from finished runs, so that no number in it is typed (scripts/results_report.py).

    python scripts/results_report.py docs/results-ted-lowres.yaml [--runs-dir runs] [--partial]

The study file (YAML) says which runs exist and how they were made, never what they scored::

    corpus: ted-lowres
    title: Measured on ted-lowres
    intro: |                   # Markdown, printed first
      ...
    shell: |                   # the shell variables the commands use
      C="--corpus ted-lowres --device cpu"
    systems:                   # one system = one configuration, trained with several seeds
      strong:
        run: strong-s{seed}    # its run dirs, runs/<corpus>/<run>/
        seeds: [1, 2, 3]
        command: bash scripts/run_strong.sh $C rung=strong-s{seed} train.seed={seed}
        about: pre-norm Transformer   # optional, the table's "system" cell
    tables:                    # each: its systems, the first the baseline of the others
      - title: The ladder
        systems: [strong, simple]
        split: test            # optional: the split scored and tested (an extra test set of the runs too)
        against: first         # optional: first (the default) or previous (each system against the row above)
        text: |                # optional Markdown under the title
          ...

Every figure comes from the runs' ``results.json`` and hypothesis files: per system the test BLEU
and chrF of each seed with sacrebleu's 95% bootstrap confidence interval, mean ± sd over seeds and
valid BLEU; per comparison with the table's baseline the seed-matched paired tests of
:mod:`nmt_suite.rungs.compare` (sacrebleu's paired bootstrap resampling) and its rule for calling a
difference real. The study's ``<out>.md`` and ``<out>.json`` (``out`` defaults to the study file's
path without ``.yaml``) are written together, atomically; the JSON's ``rungs`` list has one entry per
system (``rung``, ``n_seeds``, ``test_bleu_mean``, ``test_bleu_sd``, ...) and each comparison its
``p_value`` (the largest of its seed-matched tests, as the rule reads it).

A run of the study that has no results.json yet is an error naming it; ``--partial`` renders
what is there and lists what is missing.
"""
import argparse
import statistics
import sys
from pathlib import Path

import yaml

from nmt_suite.argparsing import OneLineErrorParser
from nmt_suite.files import atomic_write_json, atomic_write_text
from nmt_suite.rungs.compare import ALPHA, RULE, CompareError, compare_systems, load_run
from nmt_suite.rungs.summarize import markdown_table, mean_sd

PROG = "results_report"
SPLIT = "test"  # the split a table scores and tests unless it names another; valid BLEU is a side column
MIN_SEEDS = 2  # seed-matched pairs a comparison needs before it is called real or not
STUDY_KEYS = {"corpus": str, "title": str, "intro": str, "shell": str, "systems": dict, "tables": list,
              "out": str}
REQUIRED_KEYS = ("corpus", "title", "systems", "tables")
SYSTEM_KEYS = {"run": str, "seeds": list, "command": str, "about": str}
TABLE_KEYS = {"title": str, "systems": list, "text": str, "split": str, "against": str}
AGAINST = ("first", "previous")  # a table's baseline for each system: its first row, or the row above


class ReportError(ValueError):
    """Bad study file or missing runs; the message names the key or the file."""


# ------------------------------------------------------------------ the study file

def _check_keys(mapping, allowed: dict, required, where: str) -> None:
    if not isinstance(mapping, dict):
        raise ReportError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    for key, value in mapping.items():
        if key not in allowed:
            raise ReportError(f"{where}: unknown key {key!r}; known: {', '.join(allowed)}")
        if not isinstance(value, allowed[key]):
            raise ReportError(f"{where}.{key}: expected {allowed[key].__name__}, got {type(value).__name__}")
    for key in required:
        if key not in mapping:
            raise ReportError(f"{where}: missing key {key!r}")


def load_study(path: Path) -> dict:
    """The study file, checked (ReportError naming the file and key)."""
    try:
        study = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ReportError(f"{path}: cannot read ({err.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    _check_keys(study, STUDY_KEYS, REQUIRED_KEYS, str(path))
    for name, system in study["systems"].items():
        where = f"{path}: systems.{name}"
        _check_keys(system, SYSTEM_KEYS, ("run", "seeds", "command"), where)
        seeds = system["seeds"]
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ReportError(f"{where}.seeds: expected a list of integer seeds, got {seeds!r}")
        if len(set(seeds)) < len(seeds):
            raise ReportError(f"{where}.seeds: a seed is listed twice: {seeds!r}")
        runs = {system["run"].format(seed=seed) for seed in seeds}
        if len(runs) < len(seeds):
            raise ReportError(f"{where}.run: {system['run']!r} gives one run dir for several seeds; put {{seed}} in it")
    if not study["tables"]:
        raise ReportError(f"{path}: tables is empty")
    for i, table in enumerate(study["tables"]):
        where = f"{path}: tables[{i}]"
        _check_keys(table, TABLE_KEYS, ("title", "systems"), where)
        for name in table["systems"]:
            if name not in study["systems"]:
                raise ReportError(f"{where}.systems: {name!r} is not one of the study's systems")
        if not table["systems"]:
            raise ReportError(f"{where}.systems is empty")
        if table.get("against", AGAINST[0]) not in AGAINST:
            raise ReportError(f"{where}.against: {table['against']!r}, expected one of {', '.join(AGAINST)}")
    return study


def run_dirs(study: dict, runs_dir: Path) -> dict:
    """system -> [(seed, run dir), ...] in the study's seed order."""
    root = Path(runs_dir) / study["corpus"]
    return {name: [(seed, root / system["run"].format(seed=seed)) for seed in system["seeds"]]
            for name, system in study["systems"].items()}


# ------------------------------------------------------------------ the figures

def _sd(values):
    return statistics.stdev(values) if len(values) > 1 else None


def _mean(values):
    return statistics.mean(values) if values else None


def table_split(table: dict) -> str:
    return table.get("split", SPLIT)


def system_entry(name: str, system: dict, runs: list, missing: list, splits) -> dict:
    """The JSON entry of one system (a ``rungs`` item) from its loaded runs: ``<split>_<metric>`` (per
    seed), ``_mean`` and ``_sd`` for valid and each of ``splits``."""
    def scores(split, metric):
        return [run.results.scores[split][metric] for run in runs if run.results.scores.get(split)]

    first = runs[0].results if runs else None
    train = (first.config.get("train") or {}) if first else {}
    entry = {"rung": name, "about": system.get("about"), "runs": [Path(run.name).name for run in runs],
             "seeds": [int((run.results.config.get("train") or {}).get("seed")) for run in runs],
             "missing_runs": [path.name for path in missing], "n_seeds": len(runs),
             "arch": train.get("arch"), "params": first.params if first else None,
             "updates": [run.results.updates for run in runs],
             "train_flops": [run.results.train_flops for run in runs],
             "wall_time_s": [run.results.wall_time_s["total"] for run in runs],
             "threads": first.config.get("threads") if first else None}
    for split in dict.fromkeys(("valid", *splits)):
        for metric in ("bleu", "chrf"):
            values = scores(split, metric)
            entry[f"{split}_{metric}"] = values
            entry[f"{split}_{metric}_mean"] = _mean(values)
            entry[f"{split}_{metric}_sd"] = _sd(values)
    return entry


def table_figures(table: dict, entries: dict, loaded: dict, n: int) -> dict:
    """One table's comparisons, seed-matched (compare.compare_systems): each system against the first,
    or with ``against: previous`` against the nearest row above it that has runs."""
    present = [name for name in table["systems"] if loaded[name]]
    against = table.get("against", AGAINST[0])
    split = table_split(table)
    out = {"title": table["title"], "baseline": table["systems"][0], "against": against,
           "systems": table["systems"], "split": split,
           "comparisons": [], "signatures": None, "test": "bs", "n": None}
    if against == "previous":
        groups = [pair for pair in zip(present, present[1:])]
    else:
        groups = [present] if table["systems"][0] in present and len(present) > 1 else []
    reports = [compare_systems([loaded[name] for name in group], list(group), split, "bs", n) for group in groups]
    if reports:
        out.update(signatures=reports[0]["signatures"], n=reports[0]["n"])
    for comparison in (c for report in reports for c in report["comparisons"]):
        name, base = comparison["system"], comparison["baseline"]
        pairs = comparison["pairs"]
        out["comparisons"].append({
            "system": name, "baseline": base,
            "delta_bleu_mean": entries[name][f"{split}_bleu_mean"] - entries[base][f"{split}_bleu_mean"],
            "delta_chrf_mean": entries[name][f"{split}_chrf_mean"] - entries[base][f"{split}_chrf_mean"],
            "p_value": comparison["bleu"]["max_p"], "chrf_p_value": comparison["chrf"]["max_p"],
            "p_values": {str(pair["seed"]): pair["bleu"]["p_value"] for pair in pairs},
            "chrf_p_values": {str(pair["seed"]): pair["chrf"]["p_value"] for pair in pairs},
            # one run per system cannot tell a system from a lucky seed: no verdict below MIN_SEEDS pairs
            "seeds_separated": comparison["bleu"]["separated"],
            "real": comparison["bleu"]["real"] if len(pairs) >= MIN_SEEDS else None,
            "chrf_real": comparison["chrf"]["real"] if len(pairs) >= MIN_SEEDS else None,
            "unmatched_seeds": comparison["unmatched_seeds"],
            "ci": {str(pair["seed"]): {"baseline": pair["bleu"]["baseline_ci"], "system": pair["bleu"]["ci"]}
                   for pair in pairs}})
    return out


def machine_seconds(runs: list) -> float:
    """Seconds the runs' stages took, each piece of work once: a run made from a copy of another
    (the same stage record, key and finish time) shares that work. Training counts fairseq's own
    cumulative time, which includes the sessions before a resume."""
    from nmt_suite.stage_cache import StageRecords

    seen, total = set(), 0.0
    for run in runs:
        records = StageRecords(Path(run.name) / ".stages")
        for stage in records.stages():
            record = records.read(stage)
            if record is None or (stage, record["key"], record.get("finished")) in seen:
                continue
            seen.add((stage, record["key"], record.get("finished")))
            wall = float(record.get("wall_s") or 0.0)
            total += max(wall, float(run.results.train_time_s or 0.0)) if stage == "train" else wall
    return total


def figures(study: dict, runs_dir: Path, partial: bool, n: int = 0) -> dict:
    """Every number of the document, from the runs (ReportError when a run is missing, unless ``partial``)."""
    # each system's runs need the hypotheses of the splits its tables test
    needs = {name: tuple(dict.fromkeys((SPLIT, *(table_split(t) for t in study["tables"] if name in t["systems"]))))
             for name in study["systems"]}
    loaded, missing = {}, {}
    for name, dirs in run_dirs(study, runs_dir).items():
        loaded[name], missing[name] = [], []
        for seed, path in dirs:
            if not (path / "results.json").is_file():
                missing[name].append(path)
                continue
            try:
                run = load_run(path, needs[name])
            except CompareError as err:
                raise ReportError(str(err)) from None
            run_seed = (run.results.config.get("train") or {}).get("seed")
            if run_seed != seed:
                raise ReportError(f"{path / 'results.json'}: train.seed is {run_seed}, the study says {seed}")
            loaded[name].append(run)
    # missing runs as runs/<corpus>/<run>, wherever the runs dir is
    absent = [str(Path(Path(runs_dir).name, *path.parts[-2:])) for paths in missing.values() for path in paths]
    if absent and not partial:
        raise ReportError(f"{len(absent)} run(s) of the study have no results.json, e.g. {absent[0]}/results.json "
                          f"(run them, or pass --partial)")
    entries = {name: system_entry(name, study["systems"][name], loaded[name], missing[name], needs[name])
               for name in study["systems"]}
    try:
        tables = [table_figures(table, entries, loaded, n) for table in study["tables"]]
    except CompareError as err:
        raise ReportError(str(err)) from None
    signatures = {}
    for runs in loaded.values():
        for run in runs:
            entry = run.results.scores[SPLIT]
            signatures = {"bleu": entry["bleu_signature"], "chrf": entry["chrf_signature"]}
    runs = [run for name in loaded for run in loaded[name]]
    wall_hours = machine_seconds(runs) / 3600
    # CPU-hours only when every run says how many torch threads it used (null: torch's default, all cores)
    threads = {(run.results.config.get("threads") or None) for run in runs}
    cpu_hours = wall_hours * threads.pop() if len(threads) == 1 and None not in threads else None
    return {"corpus": study["corpus"], "split": SPLIT, "alpha": ALPHA, "rule": RULE,
            "score_signatures": signatures, "wall_hours": wall_hours, "cpu_hours": cpu_hours, "complete": not absent,
            "missing_runs": absent, "rungs": list(entries.values()), "tables": tables}


# ------------------------------------------------------------------ Markdown

def _p(value) -> str:
    return "–" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _per_seed(entry: dict, table: dict) -> str:
    """Each seed's test BLEU with its 95% bootstrap CI where a paired test of the table measured it."""
    cis = {}
    for comparison in table["comparisons"]:
        for seed, ci in comparison["ci"].items():
            if comparison["system"] == entry["rung"]:
                cis[seed] = ci["system"]
            elif comparison["baseline"] == entry["rung"]:
                cis.setdefault(seed, ci["baseline"])
    cells = []
    for seed, bleu in zip(entry["seeds"], entry[f"{table['split']}_bleu"]):
        ci = cis.get(str(seed))
        cells.append(f"{bleu:.2f}" + ("" if ci is None else f" ± {ci:.2f}"))
    return ", ".join(cells) or "–"


def _sci(values) -> str:
    values = [v for v in values if v]
    return "–" if not values else f"{statistics.mean(values):.2e}"


def table_markdown(table: dict, entries: dict, study: dict) -> list:
    comparisons = {c["system"]: c for c in table["comparisons"]}
    split = table["split"]
    chain = table.get("against") == "previous"
    columns = ["system", "model", "params", "updates", "train FLOPs", "seeds", "valid BLEU",
               f"{split} BLEU mean ± sd", f"{split} BLEU per seed (± 95% CI)", f"{split} chrF mean ± sd",
               "Δ BLEU vs the row above" if chain else "Δ BLEU", "p (max over seeds)", f"real at p < {ALPHA}?"]
    rows = []
    for i, name in enumerate(table["systems"]):
        e = entries[name]
        c = comparisons.get(name)
        label = (e["about"] or name) + (f" (`{name}`)" if e["about"] else "")
        rows.append([
            label + (" — baseline" if i == 0 and not chain else ""), f"`{e['arch']}`" if e["arch"] else "–",
            "–" if e["params"] is None else f"{e['params'] / 1e6:.2f}M",
            ", ".join(map(str, sorted(set(e["updates"])))) or "–", _sci(e["train_flops"]),
            f"{e['n_seeds']}" + (f" of {e['n_seeds'] + len(e['missing_runs'])}" if e["missing_runs"] else ""),
            mean_sd(e["valid_bleu"]), mean_sd(e[f"{split}_bleu"]), _per_seed(e, table), mean_sd(e[f"{split}_chrf"]),
            "–" if c is None else f"{c['delta_bleu_mean']:+.2f}",
            "–" if c is None else _p(c["p_value"]) + f" ({len(c['p_values'])})",
            "–" if c is None else (f"needs ≥ {MIN_SEEDS} seeds" if c["real"] is None
                                   else "yes" if c["real"] else "no")])
    lines = [f"## {table['title']}", ""]
    if table.get("text"):
        lines += [table["text"].rstrip(), ""]
    lines += markdown_table(columns, rows)
    unmatched = [f"{c['system']}: {', '.join(map(str, c['unmatched_seeds']))}" for c in table["comparisons"]
                 if c["unmatched_seeds"]]
    if unmatched:
        lines += ["", f"Seeds without a partner run (not tested): {'; '.join(unmatched)}."]
    lines += ["", "```bash"]
    for name in table["systems"]:
        system = study["systems"][name]
        lines += [system["command"].format(seed=seed) for seed in system["seeds"]]
    lines += ["```", ""]
    return lines


def markdown(study: dict, numbers: dict, command: str) -> str:
    entries = {e["rung"]: e for e in numbers["rungs"]}
    lines = [f"# {study['title']}", "",
             f"<!-- generated by `{command}` from the runs' results.json; do not edit by hand -->", ""]
    if study.get("intro"):
        lines += [study["intro"].rstrip(), ""]
    if not numbers["complete"]:
        lines += ["**Incomplete:** these runs have no results.json yet: "
                  + ", ".join(f"`{p}`" for p in numbers["missing_runs"]) + ".", ""]
    if study.get("shell"):
        lines += ["Settings the commands below use:", "", "```bash", study["shell"].rstrip(), "```", ""]
    lines += ["How to read the tables: Δ BLEU is the system's mean over its seeds minus its baseline's "
              "(the table's first row, or the row above where the column says so). p is sacrebleu's paired bootstrap resampling of the two systems' runs with "
              "the same seed, the largest over those seeds (their count in brackets); per seed, ± is the "
              f"half-width of sacrebleu's 95% bootstrap confidence interval. Rule: {numbers['rule']}; a "
              f"comparison with fewer than {MIN_SEEDS} seed-matched pairs gets no verdict, because a paired "
              "test over sentences does not see how much another seed would move the score.", ""]
    for table in numbers["tables"]:
        lines += table_markdown(table, entries, study)
    sig = numbers["score_signatures"]
    cpu = ("" if numbers["cpu_hours"] is None else
           f", {numbers['cpu_hours']:.1f} CPU-hours (times the runs' torch threads)")
    lines += [f"Compute of every run above (training, averaging, decoding; work that a run copied from "
              f"another counted once): {numbers['wall_hours']:.1f} hours of wall time summed over the runs"
              f"{cpu}.", ""]
    if sig:
        lines += [f"BLEU signature: `{sig['bleu']}`", "", f"chrF signature: `{sig['chrf']}`", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ command line

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, help="the study file (YAML), e.g. docs/results-ted-lowres.yaml")
    parser.add_argument("--runs-dir", type=Path, default=Path(__file__).resolve().parents[2] / "runs",
                        help="default: %(default)s")
    parser.add_argument("--out", type=Path, help="writes OUT.md and OUT.json (default: the study's `out`, "
                                                 "else the study file's path without .yaml)")
    parser.add_argument("--partial", action="store_true", help="render the runs that exist; list the missing")
    parser.add_argument("--n", type=int, default=0, help="bootstrap resamples (default sacrebleu's 1000)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error(f"--n must be 0 (sacrebleu's default) or more, got {args.n}")
    try:
        study = load_study(args.study)
        out = args.out or (Path(study["out"]) if study.get("out") else args.study.with_suffix(""))
        numbers = figures(study, args.runs_dir, args.partial, args.n)
    except ReportError as err:
        parser.error(str(err))
    command = f"python scripts/results_report.py {args.study}" + (" --partial" if args.partial else "")
    md, js = out.with_name(out.name + ".md"), out.with_name(out.name + ".json")
    try:
        atomic_write_json(js, {"generated_by": command, **numbers})
        atomic_write_text(md, markdown(study, numbers, command))
    except OSError as err:
        parser.error(f"cannot write {md if js.exists() else js}: {err.strerror}")
    print(f"{PROG}: wrote {md} and {js}" + ("" if numbers["complete"] else
                                             f" ({len(numbers['missing_runs'])} runs missing)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
