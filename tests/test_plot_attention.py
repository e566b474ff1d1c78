"""analysis/plot_attention.py: cross-attention per layer of a trained model for one sentence (for a
decoder-only model, the self-attention over the source part)."""
import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, TINY_TRAIN_ARGS, cli

ATTENTION = [sys.executable, str(REPO / "analysis" / "plot_attention.py")]


@pytest.fixture(scope="module")
def run_dir(tiny_checkpoint, tmp_path_factory):
    run = tmp_path_factory.mktemp("attention_run")
    shutil.copyfile(tiny_checkpoint, run / "checkpoint_avg.pt")
    return run


def attention(*args):
    return subprocess.run([*ATTENTION, *map(str, args)], capture_output=True, text=True)


def test_weights_per_layer_and_head_are_distributions_over_the_source(run_dir, toy_bin, tmp_path):
    out = tmp_path / "found.json"
    proc = attention(run_dir, "the cat sat on a big mat", "--data", toy_bin, "--json", out,
                     "-o", tmp_path / "att.png", "--format", "png")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(out.read_text())
    assert found["source"] == ["the", "cat", "sat", "on", "a", "big", "mat", "</s>"]
    assert found["target"][-1] == "</s>" and proc.stdout.splitlines()[0] == found["translation"]
    assert len(found["layers"]) == 2  # transformer_prenorm_tiny: 2 decoder layers
    for layer in found["layers"]:
        assert len(layer) == 4  # heads
        for head in layer:
            assert len(head) == len(found["target"])
            for row in head:
                assert len(row) == len(found["source"]) and sum(row) == pytest.approx(1, abs=1e-4)
    assert (tmp_path / "att.png").stat().st_size > 10_000


def test_one_head_and_the_default_output(run_dir, toy_bin):
    proc = attention(run_dir, "a red bird", "--data", toy_bin, "--head", "3", "--format", "png")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "plots" / "attention.png").is_file()


@pytest.mark.parametrize("args, culprit", [
    (["{run}", "x", "--data", "{bin}", "--head", "4"], "--head 4: the model has heads 0..3"),
    (["{run}", "x", "--data", "{bin}", "--beam", "0"], "--beam must be at least 1"),
    (["{run}", "x"], "results.json not found: give --data"),
    (["{run}", "x", "--data", "{run}"], "neither a prepared corpus"),
    (["{run}/nowhere", "x", "--data", "{bin}"], "nowhere/checkpoint_avg.pt not found"),
    (["{run}", "(Applause)", "--data", "{bin}"], "the sentence is empty after cleaning"),
    (["{run}", "x", "--data", "{bin}", "--font", "{run}/no-font.otf"], "no-font.otf: not found"),
])
def test_bad_input_is_one_line(run_dir, toy_bin, args, culprit):
    proc = attention(*[a.format(run=run_dir, bin=toy_bin) for a in args])
    assert proc.returncode == 2 and culprit in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def decoder_only_run(toy_bin, tmp_path_factory):
    run = tmp_path_factory.mktemp("decoder_only_run")
    args = list(TINY_TRAIN_ARGS)
    args[args.index("--arch") + 1] = "decoder_only_tiny"
    cli("fairseq-train", toy_bin, *args, "--decoder-layers", "2", "--max-update", "10", "--save-dir", run,
        "--no-epoch-checkpoints", "--disable-validation")
    shutil.copyfile(run / "checkpoint_last.pt", run / "checkpoint_avg.pt")
    return run


def test_a_decoder_only_model_shows_its_self_attention_over_the_source(decoder_only_run, toy_bin, tmp_path):
    out = tmp_path / "found.json"
    proc = attention(decoder_only_run, "the cat sat on a big mat", "--data", toy_bin, "--json", out,
                     "-o", tmp_path / "att.png", "--format", "png")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(out.read_text())
    assert found["kind"] == "self-attention over the source part"
    assert found["source"] == ["<s>", "the", "cat", "sat", "on", "a", "big", "mat", "</s>"]
    assert len(found["layers"]) == 2
    for layer in found["layers"]:
        assert len(layer) == 4
        for head in layer:
            assert len(head) == len(found["target"])
            # a row's share of attention on the source: all of it for the separator's row (nothing
            # of the translation exists yet), at most all of it after
            assert sum(head[0]) == pytest.approx(1, abs=1e-4)
            assert all(len(row) == len(found["source"]) and -1e-6 <= sum(row) <= 1 + 1e-4 for row in head)
    assert (tmp_path / "att.png").stat().st_size > 10_000
