"""analysis/plot_attention.py: cross-attention per layer of a trained model for one sentence."""
import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

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
