"""scripts/compare_runs.py: sacrebleu's paired tests between finished runs, and the rule for seeds."""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO
from results_toy import noisy, write_references, write_run

from nmt_suite.rungs.compare import main, verdict
from nmt_suite.rungs.evaluate import score

CELL = re.compile(r"(\d+\.\d+) \((\d+\.\d+) ± (\d+\.\d+)\)")  # score (mean ± 95% CI), as sacrebleu prints it
P_VALUE = re.compile(r"\(p = (\d\.\d+)\)")


@pytest.fixture(autouse=True)
def sacrebleu_default_seed(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)


@pytest.fixture
def toy(tmp_path):
    """A corpus' references and three finished runs: the baseline, one a little and one far worse."""
    data = tmp_path / "data" / "toy"
    refs = write_references(data)
    runs = {name: write_run(tmp_path / "runs" / "toy" / name, data,
                            {"test": noisy(refs, share, seed), "valid": noisy(refs, share, seed + 10)})
            for name, share, seed in [("base", 0.1, 1), ("close", 0.12, 2), ("far", 0.4, 3)]}
    return {"tmp": tmp_path, "data": data, "refs": refs, **runs}


def sacrebleu_paired(toy, runs, *options, width=2) -> dict:
    """sacrebleu's own CLI on the runs' test hypotheses: each system's cells, p-values and the signatures."""
    proc = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(toy["data"] / "ref" / "test.zh"),
         "-i", *(str(toy[run] / "hyp.test.zh") for run in runs), "-m", "bleu", "chrf", "--tokenize", "zh",
         "-f", "text", "-w", str(width), "-nc", "-q", *options],
        capture_output=True, text=True, check=True, env={k: v for k, v in os.environ.items() if k != "SACREBLEU_SEED"})
    cells, p_values = CELL.findall(proc.stdout), P_VALUE.findall(proc.stdout)
    signatures = dict(re.findall(r"^ - (BLEU|chrF2)\s+(\S+)$", proc.stdout, re.M))
    # per system, BLEU then chrF; the baseline has no p-value
    return {"cells": [cells[i:i + 2] for i in range(0, len(cells), 2)],
            "p": [["–", "–"], *(p_values[i:i + 2] for i in range(0, len(p_values), 2))],
            "scores": re.findall(r"│\s+(\d+\.\d+)\s", proc.stdout),
            "signatures": {"bleu": signatures["BLEU"], "chrf": signatures["chrF2"]}}


def table_rows(text: str) -> list:
    """The cells of a Markdown table's rows, header and rule left out."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| run |")]


def test_table_matches_sacrebleus_paired_bootstrap(toy, capsys):
    runs = ["base", "close", "far"]
    expected = sacrebleu_paired(toy, runs, "--paired-bs")
    # the toy systems are what the test needs: one difference chance explains, one it does not
    assert float(expected["p"][2][0]) < 0.05 < float(expected["p"][1][0])
    assert main([str(toy[run]) for run in runs]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [row[0] for row in rows] == [f"{toy['base']} (baseline)", str(toy["close"]), str(toy["far"])]
    assert [[row[1], row[3]] for row in rows] == [["{} ({} ± {})".format(*cell) for cell in cells]
                                                  for cells in expected["cells"]]
    assert [[row[2], row[4]] for row in rows] == expected["p"]
    assert f"BLEU signature: {expected['signatures']['bleu']}" in out
    assert f"chrF signature: {expected['signatures']['chrf']}" in out


def test_signatures_are_the_pipelines_scoring_settings(toy, capsys):
    assert main([str(toy["base"]), str(toy["far"])]) == 0
    out = capsys.readouterr().out
    printed = dict(re.findall(r"^(BLEU|chrF) signature: (\S+)$", out, re.M))
    scored = score(noisy(toy["refs"], 0.1, 1), toy["refs"])  # what results.json records for a run
    for metric, key in (("BLEU", "bleu_signature"), ("chrF", "chrf_signature")):
        assert printed[metric].replace("|bs:1000|seed:12345", "") == scored[key]


@pytest.mark.parametrize("paired, options, sacrebleu_options", [
    ("bs", [], ["--paired-bs"]),
    ("bs", ["--n", "300"], ["--paired-bs", "--paired-bs-n", "300"]),
    ("ar", ["--n", "500"], ["--paired-ar", "--paired-ar-n", "500"]),
], ids=["bootstrap", "bootstrap-300", "approximate-randomization"])
def test_script_json_matches_sacrebleu(toy, paired, options, sacrebleu_options):
    runs = ["base", "close", "far"]
    expected = sacrebleu_paired(toy, runs, *sacrebleu_options, width=4)
    out = toy["tmp"] / "compare.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_runs.py"), *(str(toy[r]) for r in runs),
                           "--paired", paired, *options, "--json", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())["test"]
    assert (report["test"], report["n"]) == (paired, int(options[1]) if options else 1000)
    runs_got = report["runs"]
    assert [[f"{run[m]['p_value']:.4f}" for m in ("bleu", "chrf")] for run in runs_got[1:]] == expected["p"][1:]
    if paired == "bs":
        assert [[tuple(f"{run[m][k]:.4f}" for k in ("score", "mean", "ci")) for m in ("bleu", "chrf")]
                for run in runs_got] == expected["cells"]
        assert report["signatures"] == expected["signatures"]
    else:  # sacrebleu's CLI gives AR no CI; ours come from 1000 bootstrap resamples (its n_ar_confidence)
        assert [f"{run[m]['score']:.4f}" for run in runs_got for m in ("bleu", "chrf")] == expected["scores"]
        assert all(run[m]["ci"] > 0 for run in runs_got for m in ("bleu", "chrf"))
        assert {m: sig.replace("|bs:1000", "") for m, sig in report["signatures"].items()} == expected["signatures"]


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _other_references(toy):
    other = toy["tmp"] / "data" / "other"
    write_references(other, seed=1)
    write_run(toy["tmp"] / "runs" / "other" / "strong", other, {"test": toy["refs"]})


@pytest.mark.parametrize("args, setup, culprit", [
    (["{base}", "{tmp}/runs/toy/nope"], None, "run dir {tmp}/runs/toy/nope not found"),
    (["{base}", "{close}"], lambda t: (t["close"] / "results.json").unlink(), "{close}/results.json not found"),
    (["{base}", "{close}"], lambda t: (t["close"] / "results.json").write_text("{"),
     "{close}/results.json: not valid JSON"),
    (["{base}", "{close}"], lambda t: (t["close"] / "results.json").write_text("{}"),
     "{close}/results.json: missing key 'schema_version'"),
    (["{base}", "{close}"], lambda t: (t["close"] / "hyp.test.zh").unlink(), "{close}/hyp.test.zh not found"),
    (["{base}", "{close}"], lambda t: _write_lines(t["close"] / "hyp.test.zh", t["refs"][:-1]),
     "{close}/hyp.test.zh: 39 lines for 40 references in {data}/ref/test.zh"),
    (["{base}", "{close}", "--split", "test,valid"], lambda t: (t["data"] / "ref" / "valid.zh").unlink(),
     "{data}/ref/valid.zh not found"),
    (["{base}", "{tmp}/runs/other/strong"], _other_references,
     "{base} and {tmp}/runs/other/strong have different test references"),
    (["{base}"], None, "need at least two runs to compare, got 1"),
    (["{base}", "{base}"], None, "a run dir is given twice: {base}"),
    (["{base},{close}"], None, "need at least two systems to compare, got 1"),
    (["{base},{close}", "{far}"], None, "{base} and {close} both have train.seed 1"),
    (["{base},{close}", "{far}", "--groups"], None, "--groups forms the systems itself"),
    (["{base}", "{close}", "--split", "train"], None, "--split 'train': expected valid, test or the name of an extra test set"),
    (["{base}", "{close}", "--n", "-1"], None, "--n must be 0 (sacrebleu's default) or more, got -1"),
], ids=["no-run-dir", "no-results", "results-not-json", "results-schema", "no-hyp", "line-count", "no-ref",
        "other-references", "one-run", "same-run-twice", "one-system", "seed-twice", "groups-and-commas",
        "bad-split", "negative-n"])
def test_bad_input_is_one_line_naming_the_file(toy, capsys, args, setup, culprit):
    if setup:
        setup(toy)
    out = toy["tmp"] / "compare.json"
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(**toy) for arg in args] + ["--json", str(out)])
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert exit_info.value.code == 2 and captured.out == "" and len(errors) == 1, captured.err
    assert errors[0].startswith("compare_runs: error: ") and culprit.format(**toy) in errors[0]
    assert not out.exists()


# ------------------------------------------------------------------ several seeds per system

@pytest.mark.parametrize("baseline, system, p_values, separated, real", [
    ([20, 21, 22], [23, 24, 25], [0.01, 0.02, 0.001], True, True),
    ([23, 24, 25], [20, 21, 22], [0.01, 0.02, 0.001], True, True),   # worse than the baseline: as real
    ([20, 21, 24], [23, 24, 25], [0.01, 0.02, 0.001], False, False),  # 24 is in both ranges
    ([20, 21, 22], [23, 24, 25], [0.01, 0.2, 0.001], True, False),    # one seed's test does not reject
    ([20, 21, 22], [23, 24, 25], [0.01, 0.05, 0.001], True, False),   # p must be below 0.05
    ([20], [20], [0.9], False, False),
])
def test_the_rule(baseline, system, p_values, separated, real):
    result = verdict(baseline, system, p_values)
    assert (result["separated"], result["real"], result["max_p"]) == (separated, real, max(p_values))


def _fix_sentence(lines, refs, i):
    return [ref if j == i else line for j, (line, ref) in enumerate(zip(lines, refs))]


def _systems(refs, case):
    """Two systems of three seeds each (seed -> test hypotheses) for one case of the rule."""
    if case == "real":  # every seed far better than every baseline seed
        return ({s: noisy(refs, 0.3, s) for s in (1, 2, 3)}, {s: noisy(refs, 0.05, 10 + s) for s in (1, 2, 3)})
    if case == "overlap":  # each paired test rejects, but one seed of the system is far worse
        return ({s: noisy(refs, 0.3, s) for s in (1, 2, 3)},
                {1: noisy(refs, 0.05, 11), 2: noisy(refs, 0.05, 12), 3: noisy(refs, 0.6, 13)})
    # "paired": every system seed one sentence better than the (identical) baseline seeds: consistent,
    # but too small a difference for one test set
    lines = noisy(refs, 0.3, 1)
    wrong = [i for i, (line, ref) in enumerate(zip(lines, refs)) if line != ref]
    return {s: lines for s in (1, 2, 3)}, {s: _fix_sentence(lines, refs, wrong[s]) for s in (1, 2, 3)}


@pytest.mark.parametrize("case, all_p_below, separated, real", [
    ("real", True, True, True),
    ("overlap", True, False, False),
    ("paired", False, True, False),
])
def test_seed_groups_on_toy_systems(tmp_path, capsys, case, all_p_below, separated, real):
    data = tmp_path / "data" / "toy"
    refs = write_references(data)
    dirs = [[str(write_run(tmp_path / "runs" / "toy" / f"{name}-s{seed}", data, {"test": hyps}, seed=seed,
                           train={"arch": name}))
             for seed, hyps in system.items()] for name, system in zip(("base", "new"), _systems(refs, case))]
    out = tmp_path / "compare.json"
    assert main([",".join(dirs[0]), ",".join(dirs[1]), "--json", str(out), "--n", "300"]) == 0
    text = capsys.readouterr().out
    comparison = json.loads(out.read_text())["test"]["comparisons"][0]
    assert [pair["seed"] for pair in comparison["pairs"]] == [1, 2, 3]
    bleu = comparison["bleu"]
    assert (all(p["bleu"]["p_value"] < 0.05 for p in comparison["pairs"]), bleu["separated"], bleu["real"]) == (
        all_p_below, separated, real)
    assert f"- BLEU: {'real' if real else 'not shown to be real'} (max p = {bleu['max_p']:.4f}" in text
    assert "Rule: a difference is real only when every seed-matched paired test gives p < 0.05" in text


def test_groups_option_forms_the_systems_from_the_configs(tmp_path, capsys):
    data = tmp_path / "data" / "toy"
    refs = write_references(data)
    runs = {(name, seed): str(write_run(tmp_path / "runs" / "toy" / f"{name}-s{seed}", data,
                                        {"test": noisy(refs, share, 10 * seed)}, seed=seed, train={"arch": name}))
            for name, share in (("base", 0.3), ("new", 0.1)) for seed in (1, 2)}
    assert main([runs["base", 1], runs["new", 1], runs["base", 2], runs["new", 2], "--groups",
                 "--json", str(tmp_path / "groups.json")]) == 0
    assert main([f"{runs['base', 1]},{runs['base', 2]}", f"{runs['new', 1]},{runs['new', 2]}",
                 "--json", str(tmp_path / "commas.json")]) == 0
    capsys.readouterr()
    groups = json.loads((tmp_path / "groups.json").read_text())
    assert [s["runs"] for s in groups["test"]["systems"]] == [[runs["base", 1], runs["base", 2]],
                                                              [runs["new", 1], runs["new", 2]]]
    assert groups == json.loads((tmp_path / "commas.json").read_text())
