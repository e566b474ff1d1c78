"""Checkpoints load with weights_only=True; a pickled payload is refused and never runs."""
import os
import pickle

import pytest
import torch

from conftest import TINY_TRAIN_ARGS, USER_DIR, cli


class _SystemCallPayload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture
def evil_checkpoint(tmp_path, tiny_checkpoint):
    """A real checkpoint whose pickle also carries `os.system("touch MARKER")`."""
    from fairseq_ext.checkpoint_safety import safe_load

    marker = tmp_path / "payload_ran"
    state = safe_load(tiny_checkpoint)
    state["extra_state"]["payload"] = _SystemCallPayload(f"touch {marker}")
    path = tmp_path / "checkpoint_evil.pt"
    torch.save(state, path)
    return path, marker


def test_safe_load_reads_a_real_checkpoint(tiny_checkpoint):
    from fairseq_ext.checkpoint_safety import safe_load

    state = safe_load(tiny_checkpoint)
    assert state["optimizer_history"][-1]["num_updates"] == 30
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())


def test_safe_load_refuses_payload(evil_checkpoint):
    from fairseq_ext.checkpoint_safety import UnsafeCheckpointError, safe_load

    path, marker = evil_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=f"refusing to load checkpoint {path}"):
        safe_load(path)
    assert not marker.exists()
    assert isinstance(UnsafeCheckpointError("x"), pickle.UnpicklingError)


@pytest.mark.parametrize(
    "command, make_args",
    [
        ("fairseq-generate", lambda bin_, ckpt, tmp: [bin_, "--user-dir", USER_DIR, "--path", ckpt, "--cpu"]),
        ("fairseq-train", lambda bin_, ckpt, tmp: [bin_, *TINY_TRAIN_ARGS, "--max-update", "35",
                                                    "--save-dir", tmp / "save", "--restore-file", ckpt]),
        ("fairseq-interactive", lambda bin_, ckpt, tmp: [bin_, "--user-dir", USER_DIR, "--path", ckpt, "--cpu",
                                                          "--source-lang", "en", "--target-lang", "zh",
                                                          "--input", os.devnull]),
        ("fairseq-validate", lambda bin_, ckpt, tmp: [bin_, "--user-dir", USER_DIR, "--task", "translation_ext",
                                                       "--path", ckpt, "--valid-subset", "valid", "--cpu", "--max-tokens", "4000"]),
    ],
)
def test_cli_refuses_payload_checkpoint(toy_bin, evil_checkpoint, tmp_path, command, make_args):
    path, marker = evil_checkpoint
    out = cli(command, *make_args(toy_bin, path, tmp_path), check=False)
    assert out.returncode != 0
    assert f"refusing to load checkpoint {path}" in out.stderr
    assert "posix.system" in out.stderr
    assert not marker.exists()
