"""scripts/run_boss.sh --corpus demo end to end on the tiny architecture, with a tiny budget."""
import json
import re

from bt_toy import BT_TAG, ONE_THREAD
from conftest import REPO, cli
from nmt_suite.rungs.results import validate_results

LIMIT = 200  # monolingual sentences back-translated
# Budgets small enough for a test, large enough that the reverse model writes some words
# (after ~30 updates it writes only punctuation, which the filters rightly drop).
OVERRIDES = (
    "train.max_update=20", "train.warmup_updates=10", "train.max_tokens=2048", "generate.beam=1", "plots=false",
    "backtranslation.reverse_overrides=[train.max_update=50,train.warmup_updates=10,train.max_tokens=2048]",
    f"backtranslation.limit={LIMIT}", "backtranslation.chunk_size=50", "backtranslation.shards=2",
    "backtranslation.tag=true",
)


def run_boss(tmp_path, *extra):
    return cli("bash", REPO / "scripts" / "run_boss.sh", "--corpus", "demo", "--device", "cpu",
               "--data-dir", tmp_path / "data", "--runs-dir", tmp_path / "runs", *OVERRIDES, *extra, env=ONE_THREAD)


def test_dry_run_prints_one_command_per_shard(tmp_path):
    out = run_boss(tmp_path, "--dry-run", "backtranslation.shards=3").stdout
    shard_ids = re.findall(r"nmt_suite\.backtranslation\.generate .*--shards 3 --shard-id (\d)", out)
    assert shard_ids == ["0", "1", "2"]
    assert "--tag" in out and not (tmp_path / "runs").exists()


def test_run_boss_demo_end_to_end_then_resumes_without_redoing_anything(tmp_path):
    first = run_boss(tmp_path)
    boss = tmp_path / "runs" / "demo" / "boss"
    results = validate_results(json.loads((boss / "results.json").read_text()))
    assert results["rung"] == "boss" and results["scores"]["test"]["n_sentences"] == 1000
    n_test = len((tmp_path / "data" / "demo" / "ref" / "test.en").read_text().splitlines())
    assert results["prediction_lines"] == n_test == len((boss / "prediction.txt").read_text().splitlines())

    bt = results["backtranslation"]
    assert bt["generation"]["data"]["num_sentences"] == LIMIT
    merged = (tmp_path / "runs" / "demo" / "bt").glob("strong-zh-en.beam.*/merged.tsv")
    ids = [int(line.split("\t")[0]) for line in next(merged).read_text().splitlines()]
    assert ids == list(range(LIMIT))
    counts = bt["training_set"]["filter"]
    assert counts["input"] == LIMIT and counts["kept"] > 0 and bt["training_set"]["leak_check"]["leaks"] == 0
    assert bt["reverse"]["valid"]["bleu_signature"].startswith("nrefs:1") and "tok:13a" in bt["reverse"]["valid"]["bleu_signature"]
    assert results["strong"] is None  # no strong run in this runs dir: nothing to compare, said so
    assert "no " in first.stdout and "run_strong.sh --corpus demo" in first.stdout

    # tagged synthetic sources were trained on, beside the untagged real data
    synthetic = (boss / "bt-data" / "synthetic.en").read_text().splitlines()
    assert len(synthetic) == counts["kept"] and all(line.startswith(BT_TAG + " ") for line in synthetic)
    assert re.search(rf"\btrain1 en-zh {counts['kept']} examples", (boss / "train.log").read_text())
    assert "--upsample-primary 1" in results["commands"]["train"]
    # ... and an untagged sentence translates through the user's path
    translated = cli("bash", "-c", f"echo 'Tom bought three books yesterday.' | "
                                   f"bash {REPO / 'scripts' / 'translate.sh'} {boss} --device cpu", env=ONE_THREAD)
    lines = translated.stdout.splitlines()
    assert len(lines) == 1 and BT_TAG not in lines[0]

    # everything is cached: a second run redoes no stage and writes the same scores
    second = run_boss(tmp_path)
    for done in ("train: done already", "average: done already", "generate valid: done already",
                 "generate test: done already", "synthetic English: done already"):
        assert done in second.stdout
    assert second.stdout.count("train: done already") == 2  # reverse and forward model
    assert second.stdout.count("generate valid: done already") == 2
    assert "bt-data: up to date" in second.stderr
    again = json.loads((boss / "results.json").read_text())
    assert again["scores"] == results["scores"] and again["backtranslation"]["training_set"] == bt["training_set"]


def test_reverse_model_and_shard_generation_use_the_configured_threads(tmp_path):
    from nmt_suite.backtranslation.boss import BossPipeline
    from nmt_suite.rungs.config import load_config

    cfg = load_config("boss", "demo", ["threads=1", "device=cpu"], extra_sections=BossPipeline.SECTIONS)
    boss = BossPipeline(cfg, tmp_path / "data", tmp_path / "runs")
    one = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert boss.child_env == one
    assert boss.reverse_run().child_env == one
