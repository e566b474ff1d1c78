"""scripts/results_report.py: a results document generated from finished runs, no number typed."""
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from results_toy import noisy, write_references, write_run

from nmt_suite.files import atomic_write_lines
from nmt_suite.rungs import compare, report
from nmt_suite.rungs.evaluate import split_files

SYSTEMS = {"base": 0.10, "close": 0.11, "far": 0.40}  # system -> share of characters replaced


@pytest.fixture(autouse=True)
def sacrebleu_default_seed(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)


def study_dict(seeds=(1, 2)) -> dict:
    return {
        "corpus": "toy", "title": "Toy study", "intro": "What the toy runs show.",
        "shell": 'C="--corpus toy"',
        "systems": {name: {"run": f"{name}-s{{seed}}", "seeds": list(seeds),
                           "command": f"bash scripts/run_strong.sh $C rung={name}-s{{seed}} train.seed={{seed}}"}
                    for name in SYSTEMS},
        "tables": [{"title": "Everything against base", "systems": list(SYSTEMS), "text": "Toy systems."},
                   {"title": "Out of domain", "systems": ["base", "far"], "split": "ood"}],
    }


@pytest.fixture
def toy(tmp_path):
    """Three systems of two seeds each (different noise per seed), and the study file naming them."""
    data = tmp_path / "data" / "toy"
    refs = write_references(data)
    ood = refs[::-1]  # an extra test set: data/toy/extra/ood/ref/test.zh
    atomic_write_lines(split_files(data, "ood", "zh"), ood)
    for k, (name, share) in enumerate(SYSTEMS.items()):
        for seed in (1, 2):
            write_run(tmp_path / "runs" / "toy" / f"{name}-s{seed}", data,
                      {"test": noisy(refs, share, 10 * k + seed), "valid": noisy(refs, share, 10 * k + seed + 5),
                       "ood": noisy(ood, share, 10 * k + seed + 7)},
                      seed=seed, train={"lr": 0.001 * (k + 1)})
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(study_dict()), encoding="utf-8")
    return tmp_path, study


def run_report(study: Path, runs: Path, *options):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "results_report.py"), str(study),
                           "--runs-dir", str(runs), *options], capture_output=True, text=True)


def test_figures_come_from_the_runs_and_sacrebleus_paired_tests(toy, tmp_path):
    root, study = toy
    proc = run_report(study, root / "runs")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads((root / "study.json").read_text(encoding="utf-8"))
    assert numbers["complete"] and not numbers["missing_runs"]
    by_name = {entry["rung"]: entry for entry in numbers["rungs"]}
    assert list(by_name) == list(SYSTEMS)
    for name in SYSTEMS:
        recorded = [json.loads((root / "runs" / "toy" / f"{name}-s{seed}" / "results.json").read_text())
                    ["scores"]["test"]["bleu"] for seed in (1, 2)]
        entry = by_name[name]
        assert entry["n_seeds"] == 2 and entry["seeds"] == [1, 2]
        assert entry["test_bleu"] == pytest.approx(recorded)
        assert entry["test_bleu_mean"] == pytest.approx(statistics.mean(recorded))
        assert entry["test_bleu_sd"] == pytest.approx(statistics.stdev(recorded))
    # the p-values are compare_runs' seed-matched tests, the table's p their maximum
    out = tmp_path / "compare.json"
    dirs = [",".join(str(root / "runs" / "toy" / f"{name}-s{seed}") for seed in (1, 2)) for name in SYSTEMS]
    assert compare.main([*dirs, "--json", str(out)]) == 0
    expected = json.loads(out.read_text())["test"]["comparisons"]
    got = numbers["tables"][0]["comparisons"]
    assert [c["system"] for c in got] == ["close", "far"]
    for mine, theirs in zip(got, expected):
        pair_p = [pair["bleu"]["p_value"] for pair in theirs["pairs"]]
        assert mine["p_values"] == {str(pair["seed"]): pair["bleu"]["p_value"] for pair in theirs["pairs"]}
        assert mine["p_value"] == max(pair_p) == theirs["bleu"]["max_p"]
        assert mine["real"] == theirs["bleu"]["real"]
    far = got[1]
    assert far["real"] and far["p_value"] < 0.05 and far["delta_bleu_mean"] < 0
    # the Markdown shows the JSON's figures
    md = (root / "study.md").read_text(encoding="utf-8")
    assert md == report.markdown(study_dict(), {k: v for k, v in numbers.items() if k != "generated_by"},
                                 numbers["generated_by"])
    far_row = next(line for line in md.splitlines() if line.startswith("| far"))
    assert f"{far['delta_bleu_mean']:+.2f}" in far_row and far_row.rstrip().endswith("| yes |")
    assert mean_sd_cell(by_name["far"]["test_bleu"]) in far_row
    assert "bash scripts/run_strong.sh $C rung=close-s2 train.seed=2" in md
    assert "tok:zh" in md
    # the out-of-domain table scores and tests the extra split
    ood = numbers["tables"][1]
    assert ood["split"] == "ood" and [c["system"] for c in ood["comparisons"]] == ["far"]
    assert compare.main([dirs[0], dirs[2], "--split", "ood", "--json", str(out)]) == 0
    assert ood["comparisons"][0]["p_value"] == json.loads(out.read_text())["ood"]["comparisons"][0]["bleu"]["max_p"]
    recorded = [json.loads((root / "runs" / "toy" / f"far-s{seed}" / "results.json").read_text())
                ["scores"]["ood"]["bleu"] for seed in (1, 2)]
    assert by_name["far"]["ood_bleu"] == pytest.approx(recorded)
    assert "| system | model | params | updates | train FLOPs | seeds | valid BLEU | ood BLEU mean ± sd |" in md


def mean_sd_cell(values) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def test_generating_twice_gives_the_same_files(toy):
    root, study = toy
    assert run_report(study, root / "runs").returncode == 0
    first = [(root / f"study.{ext}").read_bytes() for ext in ("md", "json")]
    assert run_report(study, root / "runs").returncode == 0
    assert [(root / f"study.{ext}").read_bytes() for ext in ("md", "json")] == first


def test_a_missing_run_is_an_error_unless_partial(toy):
    root, study = toy
    (root / "runs" / "toy" / "far-s2" / "results.json").unlink()
    proc = run_report(study, root / "runs")
    assert proc.returncode == 2 and not (root / "study.md").exists()
    assert "far-s2/results.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_report(study, root / "runs", "--partial")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads((root / "study.json").read_text())
    assert not numbers["complete"] and numbers["missing_runs"][0].endswith("far-s2")
    far = next(e for e in numbers["rungs"] if e["rung"] == "far")
    assert far["n_seeds"] == 1 and far["test_bleu_sd"] is None
    md = (root / "study.md").read_text()
    assert "**Incomplete:**" in md and "| 1 of 2 |" in md
    # far's one seed is tested against base's run of that seed only
    assert next(c for c in numbers["tables"][0]["comparisons"] if c["system"] == "far")["p_values"].keys() == {"1"}


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("change, culprit", [
    (lambda d: d.update(tabels=[]), "unknown key 'tabels'"),
    (lambda d: d.pop("corpus"), "missing key 'corpus'"),
    (lambda d: d["tables"][0]["systems"].append("nope"), "'nope' is not one of the study's systems"),
    (lambda d: d["systems"]["far"].update(seeds=[1, 1]), "systems.far.seeds: a seed is listed twice"),
    (lambda d: d["systems"]["far"].update(run="far"), "put {seed} in it"),
    (lambda d: d["systems"]["far"].update(seeds=["one"]), "systems.far.seeds: expected a list of integer"),
    (lambda d: d["tables"][0].update(against="last"), "tables[0].against: 'last', expected one of first, previous"),
])
def test_bad_study_is_one_line_naming_the_key(toy, change, culprit):
    root, study = toy
    _edit(study, change)
    proc = run_report(study, root / "runs")
    assert proc.returncode == 2 and culprit in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (root / "study.md").exists() and not (root / "study.json").exists()


def test_a_run_of_another_seed_is_refused(toy):
    root, study = toy
    shutil.copytree(root / "runs" / "toy" / "base-s2", root / "runs" / "toy" / "base-s3")
    _edit(study, lambda d: d["systems"]["base"].update(seeds=[1, 3]))
    proc = run_report(study, root / "runs")
    assert proc.returncode == 2 and "base-s3/results.json: train.seed is 2, the study says 3" in proc.stderr


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpus: [unclosed\n")
    for path, culprit in [(bad, "not valid YAML"), (tmp_path / "none.yaml", "cannot read")]:
        proc = run_report(path, tmp_path)
        assert proc.returncode == 2 and culprit in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("study", sorted(p.name for p in (REPO / "docs").glob("results-*.yaml")))
def test_committed_results_document_is_its_jsons_rendering(study):
    """docs/results-*.md is what the generator renders from the committed JSON: no hand edits."""
    study_path = REPO / "docs" / study
    numbers = json.loads(study_path.with_suffix(".json").read_text(encoding="utf-8"))
    command = numbers.pop("generated_by")
    page = study_path.with_suffix(".md").read_text(encoding="utf-8")
    assert page == report.markdown(report.load_study(study_path), numbers, command)
    assert {"rung", "n_seeds", "test_bleu_mean", "test_bleu_sd"} <= set(numbers["rungs"][0])
    assert all("p_value" in c for table in numbers["tables"] for c in table["comparisons"])
    assert not re.search(r"TODO|FIXME", page)


def test_one_seed_gets_p_values_but_no_verdict(toy):
    root, study = toy
    _edit(study, lambda d: [d["systems"][name].update(seeds=[1]) for name in SYSTEMS])
    proc = run_report(study, root / "runs")
    assert proc.returncode == 0, proc.stderr
    far = json.loads((root / "study.json").read_text())["tables"][0]["comparisons"][1]
    assert far["system"] == "far" and far["p_value"] < 0.05 and far["real"] is None
    assert "| needs ≥ 2 seeds |" in (root / "study.md").read_text()


def test_machine_time_counts_copied_work_once(toy):
    root, _ = toy
    from nmt_suite.stage_cache import StageRecords

    runs = root / "runs" / "toy"
    records = StageRecords(runs / "base-s1" / ".stages")
    records.write("train", "k-train", wall_s=100.0)
    records.write("generate_test", "k-gen", wall_s=10.0)
    shutil.copytree(runs / "base-s1", runs / "base-copy")  # e.g. the same model decoded with another beam
    StageRecords(runs / "base-copy" / ".stages").write("generate_test", "k-gen-beam1", wall_s=4.0)
    loaded = [compare.load_run(runs / name, ("test",)) for name in ("base-s1", "base-copy")]
    # training: fairseq's cumulative time (results.json train_time_s, 60 s in the toy) or the stage's, the larger
    assert report.machine_seconds(loaded) == pytest.approx(100.0 + 10.0 + 4.0)


def test_a_chain_table_tests_each_system_against_the_row_above(toy, tmp_path):
    root, study = toy
    _edit(study, lambda d: d["tables"][0].update(against="previous"))
    proc = run_report(study, root / "runs")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads((root / "study.json").read_text(encoding="utf-8"))
    chain = numbers["tables"][0]
    assert chain["against"] == "previous"
    assert [(c["baseline"], c["system"]) for c in chain["comparisons"]] == [("base", "close"), ("close", "far")]
    out = tmp_path / "compare.json"
    dirs = {name: ",".join(str(root / "runs" / "toy" / f"{name}-s{seed}") for seed in (1, 2)) for name in SYSTEMS}
    assert compare.main([dirs["close"], dirs["far"], "--json", str(out)]) == 0
    expected = json.loads(out.read_text())["test"]["comparisons"][0]
    assert chain["comparisons"][1]["p_value"] == expected["bleu"]["max_p"]
    by_name = {entry["rung"]: entry for entry in numbers["rungs"]}
    assert chain["comparisons"][1]["delta_bleu_mean"] == pytest.approx(
        by_name["far"]["test_bleu_mean"] - by_name["close"]["test_bleu_mean"])
    md = (root / "study.md").read_text(encoding="utf-8")
    assert "Δ BLEU vs the row above" in md and "— baseline" in md  # the second table still has one
    assert numbers["tables"][1]["against"] == "first"
