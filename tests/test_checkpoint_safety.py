"""Checkpoints load with weights_only=True and literal config strings only; fairseq copies them atomically.

Every payload kind through every loading path: test_checkpoint_payloads.py.
"""
import argparse
import os
import pickle
import re
from pathlib import Path

import fairseq
import fairseq_cli
import pytest
import torch
from fairseq import checkpoint_utils, file_io
from omegaconf import OmegaConf

from conftest import TINY_TRAIN_ARGS, USER_DIR, cli
from payloads import SystemCallPayload


@pytest.fixture
def evil_checkpoint(tmp_path, tiny_checkpoint):
    """A real checkpoint whose pickle also carries `os.system("touch MARKER")`."""
    from fairseq_ext.checkpoint_safety import safe_load

    marker = tmp_path / "payload_ran"
    state = safe_load(tiny_checkpoint)
    state["extra_state"]["payload"] = SystemCallPayload(f"touch {marker}")
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


def _cyclic_config():
    cfg = {"model": argparse.Namespace(adam_betas="(0.9, 0.98)")}
    cfg["itself"] = cfg
    return {"cfg": cfg}


EVIL = "__import__('os').system('true')"


@pytest.mark.parametrize("state, refused_field", [
    # what fairseq-train writes: literal strings, None, "None", and fields fairseq never evaluates
    ({"cfg": {"optimizer": {"adam_betas": "(0.9,0.98)"}, "task": {"data": EVIL}}}, None),
    ({"cfg": {"model": argparse.Namespace(adaptive_softmax_cutoff=None, encoder_xformers_att_config="None")}},
     None),
    ({"args": argparse.Namespace(adam_betas="[0.9, 0.98]", left_pad_source=True, encoder_layers=6)}, None),
    ({"model": {}}, None),
    (torch.zeros(1), None),
    (_cyclic_config(), None),
    ({"cfg": {"model": argparse.Namespace(encoder_xformers_att_config=f"[{EVIL}] and None")}},
     "cfg.model.encoder_xformers_att_config"),
    ({"cfg": {"model": {"encoder": {"xformers_att_config": EVIL}}}}, "cfg.model.encoder.xformers_att_config"),
    ({"cfg": OmegaConf.create({"optimizer": {"adam_betas": "exec('x')"}})}, "cfg.optimizer.adam_betas"),
    ({"args": argparse.Namespace(lamb_betas="(0.9, 0.999) if True else 0")}, "args.lamb_betas"),
    ({"cfg": {"optimizer": {"adam_betas": b"(0.9,0.98)"}}}, "cfg.optimizer.adam_betas"),
    ({"cfg": {"sections": [{"wer_args": "print(1)"}]}}, "cfg.sections[0].wer_args"),
    ({"cfg": {"model": {"adaptive_softmax_cutoff": "${task.data}"}}}, "cfg.model.adaptive_softmax_cutoff"),
    ({"cfg": {"model": {"adaptive_softmax_cutoff": ""}}}, "cfg.model.adaptive_softmax_cutoff"),
])
def test_config_strings_fairseq_evaluates_must_be_literals(state, refused_field):
    from fairseq_ext.checkpoint_safety import UnsafeCheckpointError, check_config_strings

    if refused_field is None:
        check_config_strings(state, "ckpt.pt")
    else:
        with pytest.raises(UnsafeCheckpointError,
                           match=re.escape(f"refusing to load checkpoint ckpt.pt: {refused_field} is ")):
            check_config_strings(state, "ckpt.pt")


# eval(cfg.x) / utils.eval_str_list(self.args.y, ...) / eval_bool(getattr(args, "z", ...))
_EVALUATED = re.compile(r"\b(?:eval|eval_str_list|eval_str_dict|eval_bool)\(\s*(?:(?:self\.)?(?:cfg|args)"
                        r"(?:\.\w+)*\.(\w+)|getattr\(\s*\w+,\s*[\"'](\w+)[\"'])")


def test_every_config_field_fairseq_evaluates_is_checked():
    from fairseq_ext.checkpoint_safety import EVALUATED_FIELDS

    found = {}
    for package in (fairseq, fairseq_cli):
        root = Path(package.__file__).parent
        for source in root.rglob("*.py"):
            if "examples" not in source.relative_to(root).parts:
                for match in _EVALUATED.finditer(source.read_text(encoding="utf-8", errors="replace")):
                    found.setdefault(match.group(1) or match.group(2), source.name)
    assert {"adam_betas", "adaptive_softmax_cutoff", "model_overrides"} <= found.keys()
    assert {field: where for field, where in found.items() if field not in EVALUATED_FIELDS} == {}


def _copy_half_then_die(src_path, dst_path, overwrite=False):
    data = Path(src_path).read_bytes()
    Path(dst_path).write_bytes(data[: len(data) // 2])
    raise OSError("killed mid-copy")


@pytest.mark.parametrize("before", [b"the previous complete checkpoint", None])
def test_checkpoint_copy_cut_short_leaves_the_previous_file_or_none(tmp_path, monkeypatch, before):
    src, dst = tmp_path / "checkpoint3.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"the new checkpoint " * 1000)
    if before is not None:
        dst.write_bytes(before)
    monkeypatch.setattr(file_io.PathManager, "copy", staticmethod(_copy_half_then_die))
    with pytest.raises(OSError, match="killed mid-copy"):
        checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)  # what save_checkpoint calls
    assert (dst.read_bytes() if dst.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, *([dst.name] if before else [])])


def test_checkpoint_copy_replaces_the_destination(tmp_path):
    src, dst = tmp_path / "checkpoint3.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"the new checkpoint " * 1000)
    dst.write_bytes(b"old")
    assert checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name, dst.name]
