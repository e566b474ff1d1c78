"""Every kind of crafted checkpoint is refused, naming file and culprit, by the paths that read one
(which kind goes through which path: ``_cases``).

Payload kinds (tests/payloads.py): a config string fairseq eval()s (in cfg.model, or in a legacy
args Namespace), and a pickled os.system call loaded with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 or
through a fairseq loader that passes weights_only=False (as upstream fairseq's newest does).
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BIN, REPO, USER_DIR, cli
from payloads import (NO_WEIGHTS_ONLY_ENV, PAYLOADS, craft_checkpoint, upstream_load_checkpoint_to_cpu,
                      upstream_loader_env)

from fairseq import checkpoint_utils
from fairseq_ext.checkpoint_safety import UnsafeCheckpointError, safe_load
from nmt_suite.rungs.averaging import average_checkpoints

HUB_SCRIPT = """
import sys
from pathlib import Path
import fairseq_ext
from fairseq.models.transformer import TransformerModel
checkpoint, data = map(Path, sys.argv[1:])
hub = TransformerModel.from_pretrained(str(checkpoint.parent), checkpoint_file=checkpoint.name,
                                       data_name_or_path=str(data))
print("translation:", hub.translate("the cat sat on the mat", beam=1))
"""


@pytest.fixture(scope="module")
def translate_data(toy_bin, tmp_path_factory) -> Path:
    """A prepared-corpus dir as translate.sh wants it: spm/spm.model and bin/ (the toy corpus)."""
    import sentencepiece as spm

    data = tmp_path_factory.mktemp("translate_data")
    (data / "bin").symlink_to(toy_bin)
    (data / "spm").mkdir()
    words = [line.split()[0] for line in (toy_bin / "dict.en.txt").read_text().splitlines()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(words), model_prefix=str(data / "spm" / "spm"),
                                   vocab_size=len(words) + 3, model_type="word",
                                   hard_vocab_limit=False, minloglevel=2)
    return data


@dataclass
class Loading:
    """One attempt to load a checkpoint: where, under which environment, with which fairseq loader."""
    checkpoint: Path
    env: dict
    upstream_loader: bool
    toy_bin: Path
    translate_data: Path
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch

    def in_process(self, load):
        """Run ``load()`` here under this loading's environment; what it raised or returned."""
        for name, value in self.env.items():
            self.monkeypatch.setenv(name, value)
        if self.upstream_loader:
            self.monkeypatch.setattr(checkpoint_utils, "load_checkpoint_to_cpu",
                                     upstream_load_checkpoint_to_cpu(checkpoint_utils))
        try:
            return True, load()
        except UnsafeCheckpointError as err:
            return False, str(err)

    def subprocess_env(self, **extra) -> dict:
        env = {**self.env, **extra}
        if self.upstream_loader:
            env.update(upstream_loader_env(self.tmp_path / "upstream_loader"))
        return env

    def result(self, proc: subprocess.CompletedProcess):
        return proc.returncode == 0, proc.stdout + proc.stderr


def via_safe_load(run: Loading):
    return run.in_process(lambda: safe_load(run.checkpoint))


def via_averaging(run: Loading):
    out = run.tmp_path / "averaged" / "checkpoint_avg.pt"
    out.parent.mkdir()
    loaded, result = run.in_process(lambda: average_checkpoints([run.checkpoint], out))
    return loaded or out.exists(), result


def via_fairseq_loader(run: Loading):
    """What fairseq-train --restore-file and every model-loading path call."""
    return run.in_process(lambda: checkpoint_utils.load_checkpoint_to_cpu(str(run.checkpoint)))


def via_generate(run: Loading):
    return run.result(cli("fairseq-generate", run.toy_bin, "--user-dir", USER_DIR, "--path", run.checkpoint,
                          "--cpu", "--beam", "1", "--batch-size", "128", env=run.subprocess_env(), check=False))


def via_hub(run: Loading):
    env = run.subprocess_env(**dict(NO_WEIGHTS_ONLY_ENV))
    return run.result(cli("python", "-c", HUB_SCRIPT, run.checkpoint, run.toy_bin, env=env, check=False))


def via_translate_sh(run: Loading):
    run_dir = run.checkpoint.parent
    assert run.checkpoint.name == "checkpoint_avg.pt", "translate.sh reads RUN_DIR/checkpoint_avg.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **run.subprocess_env()}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "translate.sh"), str(run_dir), "--data",
                           str(run.translate_data), "--device", "cpu", "--beam", "1"],
                          input="the cat sat on the mat\n", capture_output=True, text=True, env=env, timeout=300)
    log = run_dir / "translate.log"  # where translate.sh may send fairseq's log
    return proc.returncode == 0, proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")


def via_plot_attention(run: Loading):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **run.subprocess_env()}
    proc = subprocess.run([sys.executable, str(REPO / "analysis" / "plot_attention.py"), str(run.checkpoint.parent),
                           "the cat sat", "--data", str(run.toy_bin), "--beam", "1", "--format", "png"],
                          capture_output=True, text=True, env=env, timeout=300)
    return proc.returncode == 0, proc.stdout + proc.stderr


# name: (load, goes through fairseq's checkpoint_utils loader)
PATHS = {
    "safe_load": (via_safe_load, False),
    "averaging": (via_averaging, False),
    "fairseq loader": (via_fairseq_loader, True),
    "fairseq-generate": (via_generate, True),
    "from_pretrained": (via_hub, True),
    "translate.sh": (via_translate_sh, True),
    "plot_attention": (via_plot_attention, True),
}
IN_PROCESS = ("safe_load", "averaging", "fairseq loader")
CHILD_PROCESSES = [path for path in PATHS if path not in IN_PROCESS]


def _cases() -> list:
    """Every kind through every in-process path (the upstream-loader kind only through fairseq's
    loader: it is about fairseq's own torch.load call, which safe_load does not make). In a child
    process, where each case costs a fairseq start-up: the pickled payloads, whose refusal depends on
    the environment and loader of that process, through every one; the config payloads, refused by
    the same inspection whichever process loads them, through one each, in turn."""
    cases, turn = [], 0
    for kind, payload in PAYLOADS.items():
        cases += [(kind, path) for path in IN_PROCESS if PATHS[path][1] or not payload.upstream_loader]
        if payload.env or payload.upstream_loader:
            cases += [(kind, path) for path in CHILD_PROCESSES]
        else:
            cases.append((kind, CHILD_PROCESSES[turn % len(CHILD_PROCESSES)]))
            turn += 1
    return cases


CASES = _cases()


@pytest.mark.parametrize("kind, path", CASES)
def test_crafted_checkpoint_is_refused_and_its_payload_never_runs(
        kind, path, tiny_checkpoint, toy_bin, translate_data, tmp_path, monkeypatch):
    payload = PAYLOADS[kind]
    checkpoint = tmp_path / "run" / "checkpoint_avg.pt"  # as a finished run has it, for translate.sh
    marker = craft_checkpoint(tiny_checkpoint, payload, checkpoint)
    load, _ = PATHS[path]
    loaded, text = load(Loading(checkpoint, dict(payload.env), payload.upstream_loader, toy_bin,
                                translate_data, tmp_path, monkeypatch))
    assert not marker.exists(), f"the payload ran through {path}"
    assert not loaded, f"{path} loaded the crafted checkpoint"
    assert f"refusing to load checkpoint {checkpoint}: " in text, text[-3000:]
    assert payload.culprit in text, text[-3000:]


# path: what shows that the genuine checkpoint loaded
GENUINE_LOADED = {
    "safe_load": lambda state: state["optimizer_history"][-1]["num_updates"] == 30,
    "fairseq loader": lambda state: state["cfg"].model.arch == "transformer_prenorm_tiny",
    "fairseq-generate": lambda out: "Generate test with beam=1: BLEU4 = " in out,
    "from_pretrained": lambda out: "translation: z" in out,
}


@pytest.mark.parametrize("path", GENUINE_LOADED)
def test_genuine_checkpoint_loads_without_weights_only_default_and_with_upstream_loader(
        path, tiny_checkpoint, toy_bin, tmp_path, monkeypatch):
    load, through_fairseq = PATHS[path]
    loaded, result = load(Loading(tiny_checkpoint, dict(NO_WEIGHTS_ONLY_ENV), through_fairseq, toy_bin,
                                  None, tmp_path, monkeypatch))
    assert loaded, result
    assert GENUINE_LOADED[path](result)
