"""The benchmark harness (nmt_suite.bench): end to end on the tiny architecture, and its arithmetic."""
import json
import math
import sys

import pytest
from conftest import REPO, cli

from nmt_suite.bench.curves import compare, plot, smooth
from nmt_suite.bench.measure import generate_rates, override, rotated, train_rates

TRAIN_FIELDS = {"about", "tokens_per_s", "tokens_per_s_runs", "tokens_per_cpu_s", "speedup_vs_stock",
                "matmul_dtype", "achieved_tflops", "mfu", "peak_rss_mb", "peak_cuda_mb", "args"}
GENERATE_FIELDS = {"about", "sentences_per_s", "tokens_per_s", "tokens_per_s_runs", "speedup_vs_stock",
                   "sentences_per_s_speedup_vs_stock", "identical_hypotheses_pct", "sentences_total",
                   "generated_tokens", "peak_rss_mb", "peak_cuda_mb", "args"}
TOP_FIELDS = {"bench", "device", "device_name", "torch", "fairseq", "python", "corpus", "data_bin", "model",
              "settings", "peak_flops", "flops_per_token", "flops_per_token_stock", "train",
              "gnorm_overhead_pct", "generate", "generate_checkpoint", "generate_sentences", "targets",
              "runs_dir"}


def test_harness_end_to_end_on_tiny_model(toy_bin, tmp_path):
    out = tmp_path / "out"
    proc = cli(sys.executable, "-m", "nmt_suite.bench", "--data-bin", toy_bin, "--model", "tiny", "--device", "cpu",
               "--repeats", 1, "--warmup-updates", 1, "--measure-updates", 2, "--max-tokens", 1000,
               "--train-configs", "ours_fast,ours_fast_nognorm", "--generate-configs", "stock,ours_bf16",
               "--gen-batch-size", 50, "--peak-seconds", 0.02, "--work-dir", "work",  # relative to cwd
               "--out", "out", cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    result = json.loads(proc.stdout.splitlines()[0])  # first line: the JSON record
    assert result == json.loads((out / "results.json").read_text())
    assert TOP_FIELDS <= result.keys()
    assert set(result["train"]) == {"stock_fp32", "ours_fast", "ours_fast_nognorm"}
    for name, row in result["train"].items():
        assert TRAIN_FIELDS <= row.keys(), name
        assert row["tokens_per_s"] > 0 and row["peak_rss_mb"] > 0 and 0 < row["mfu"] < 1
    for name in ("ours_fast", "ours_fast_nognorm"):  # ratios to stock_fp32, taken within the repeat
        speedup = result["train"][name]["speedup_vs_stock"]
        assert math.isfinite(speedup) and speedup > 0, name
    assert result["train"]["ours_fast"]["matmul_dtype"] == "bf16"
    assert result["flops_per_token"] == pytest.approx(result["flops_per_token_stock"])  # same model
    assert result["gnorm_overhead_pct"] is not None
    assert set(result["generate"]) == {"stock", "ours_bf16"}
    for name, row in result["generate"].items():
        assert GENERATE_FIELDS <= row.keys(), name
        assert row["sentences_total"] == 100 and row["sentences_per_s"] > 0  # every test sentence
    bf16 = result["generate"]["ours_bf16"]
    assert math.isfinite(bf16["speedup_vs_stock"]) and bf16["speedup_vs_stock"] > 0
    # bf16 matmuls may flip a few near-tied beam choices (96 % here), no more: the stock checkpoint's
    # hypotheses (4 updates of training) fall into a handful of repeated strings, the largest
    # 37 of 100, so a broken bf16 path (garbage, one string for every sentence) scores far lower.
    assert 80.0 <= bf16["identical_hypotheses_pct"] <= 100.0
    assert set(result["targets"]) >= {"training_speedup_ge_1.5", "gnorm_overhead_le_2pct", "generation_ge_stock"}
    table = (out / "results.md").read_text()
    assert "| config | tokens/s | x stock |" in table and "| ours_fast |" in table
    assert "| config | sentences/s |" in table and table in proc.stdout
    # every file a run writes (our gnorm log under --no-save included) stays in the work dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "work"]
    assert list((tmp_path / "work").rglob("gnorm.jsonl"))


def test_unknown_config_is_a_clear_error(tmp_path, toy_bin):
    proc = cli(sys.executable, "-m", "nmt_suite.bench", "--data-bin", toy_bin, "--train-configs", "warp_drive",
               "--work-dir", tmp_path, cwd=REPO, check=False)
    assert proc.returncode != 0 and "unknown config(s) ['warp_drive']" in proc.stderr


@pytest.mark.parametrize("args, extra, expected", [
    (["--a", "1", "--b"], ["--a", "2"], ["--a", "2", "--b"]),
    (["--a", "1", "--b"], ["--b"], ["--a", "1", "--b"]),
    (["--a", "1"], ["--c", "x", "--d"], ["--a", "1", "--c", "x", "--d"]),
    (["--optimizer", "adam", "--lr", "1"], ["--optimizer", "fused_adam"], ["--optimizer", "fused_adam", "--lr", "1"]),
    (["data", "--b", "--a", "(0.9,0.98)"], ["--a", "(0.8,0.9)"], ["data", "--b", "--a", "(0.8,0.9)"]),
])
def test_override(args, extra, expected):
    assert override(args, extra) == expected


@pytest.mark.parametrize("names, repeat, expected", [
    (["a", "b", "c"], 0, ["a", "b", "c"]), (["a", "b", "c"], 1, ["b", "c", "a"]), (["a", "b", "c"], 4, ["b", "c", "a"]),
])
def test_rotated(names, repeat, expected):
    assert rotated(names, repeat) == expected


def test_rates_exclude_warmup():
    records = [{"wall": w, "cpu": c, "ntokens": 100} for w, c in [(10, 5), (11, 6), (13, 7), (14, 8)]]
    rates = train_rates(records, warmup=1)  # timing starts at the end of update 2 (wall 11)
    assert rates == {"tokens_per_s": 200 / 3, "tokens_per_cpu_s": 100.0, "updates": 2, "tokens": 200}
    gen = generate_rates([{"wall": 9.0, "cpu": 9.0, "nsentences": 5, "ntokens": 50},
                          {"wall": 2.0, "cpu": 1.0, "nsentences": 10, "ntokens": 100}])
    assert gen["sentences_per_s"] == 5.0 and gen["tokens_per_cpu_s"] == 100.0
    assert gen["sentences_total"] == 15


@pytest.mark.parametrize("values, window, expected", [
    ([1.0, 2.0, 3.0, 4.0], 2, [1.0, 1.5, 2.5, 3.5]),
    ([4.0, 4.0, 4.0], 1, [4.0, 4.0, 4.0]),
    ([3.0, 6.0], 5, [3.0, 4.5]),
])
def test_smooth(values, window, expected):
    assert smooth(values, window) == expected


def test_compare_curves_noise_and_deviation(tmp_path):
    ref1 = [10.0 - 0.01 * i for i in range(100)]
    ref2 = [v + 0.2 for v in ref1]  # another seed: 0.2 apart
    close = {1: [v + 0.05 for v in ref1], 2: [v - 0.05 for v in ref2]}
    far = {1: [v + 1.0 for v in ref1], 2: [v + 1.0 for v in ref2]}
    curves = {"fp32": {1: ref1, 2: ref2}, "bf16": close, "broken": far}
    summary = compare(curves, "fp32", window=10)
    assert summary["noise"] == pytest.approx(0.2)
    assert summary["configs"]["bf16"]["within_noise"] is True
    assert summary["configs"]["broken"]["within_noise"] is False
    assert summary["configs"]["fp32"]["within_noise"] is None
    plot(curves, 10, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
