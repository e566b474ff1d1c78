"""Average the weights of the last N checkpoints (what fairseq's scripts/average_checkpoints.py does).

fairseq's script is not part of the installed package and loads checkpoints with
``torch.load`` without the allow-list; ours loads with
:func:`fairseq_ext.checkpoint_safety.safe_load`, which refuses a checkpoint that could run
code (an unknown pickle global, or a config string fairseq evaluates that is not a literal)
before anything is written. The result loads in fairseq-generate / fairseq-interactive like
any other checkpoint.
"""
import re
from pathlib import Path

import torch

from fairseq_ext.checkpoint_safety import safe_load
from nmt_suite.files import atomic_open

_EPOCH = re.compile(r"^checkpoint(\d+)\.pt$")
_UPDATE = re.compile(r"^checkpoint_(\d+)_(\d+)\.pt$")


def checkpoint_updates(path: Path) -> int:
    """The number of updates a fairseq checkpoint was saved after."""
    history = safe_load(path, mmap=True).get("optimizer_history") or [{}]
    return int(history[-1].get("num_updates", 0))


def last_checkpoints(save_dir: Path, n: int) -> list:
    """The newest ``n`` checkpoints of ``save_dir``, oldest first.

    Update checkpoints (``checkpoint_<epoch>_<updates>.pt``, written with
    ``--save-interval-updates``) when there are any, else epoch checkpoints
    (``checkpoint<epoch>.pt``); ``checkpoint_last.pt`` when there are neither, and also
    when it is newer than all of them: training stopped mid-epoch (``--max-update``,
    ``--stop-time-hours``) leaves its final weights only there.
    """
    save_dir = Path(save_dir)
    by_update = sorted((int(m.group(2)), p) for p in save_dir.glob("checkpoint_*_*.pt")
                       if (m := _UPDATE.match(p.name)))
    by_epoch = sorted((int(m.group(1)), p) for p in save_dir.glob("checkpoint*.pt")
                      if (m := _EPOCH.match(p.name)))
    found = [p for _, p in (by_update or by_epoch)]
    last = save_dir / "checkpoint_last.pt"
    if last.exists() and (not found or checkpoint_updates(last) > checkpoint_updates(found[-1])):
        found.append(last)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {save_dir}")
    return found[-n:] if n > 0 else found[-1:]


def average_checkpoints(paths, out_path: Path) -> dict:
    """Write the element-wise mean of the models in ``paths`` to ``out_path``; return what was averaged.

    Floating-point tensors are averaged in float64 and cast back; other tensors (e.g.
    fairseq's ``version`` buffers) are taken from the newest checkpoint. The result keeps
    the newest checkpoint's config and counters but not its optimizer state.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    sums, newest = None, None
    for path in paths:
        state = safe_load(path)
        model = state["model"]
        if sums is None:
            sums = {k: v.double() if v.is_floating_point() else None for k, v in model.items()}
        elif model.keys() != sums.keys():
            diff = sorted(set(model) ^ set(sums))[:5]
            raise ValueError(f"{path}: its parameters differ from {paths[0]}'s (e.g. {diff}); "
                             f"cannot average checkpoints of different models")
        else:
            for k, v in model.items():
                if sums[k] is not None:
                    if v.shape != sums[k].shape:
                        raise ValueError(f"{path}: parameter {k} has shape {tuple(v.shape)}, "
                                         f"{tuple(sums[k].shape)} in {paths[0]}")
                    sums[k] += v.double()
        newest = state
    averaged = {}
    for k, v in newest["model"].items():
        averaged[k] = (sums[k] / len(paths)).to(v.dtype) if sums[k] is not None else v
    newest["model"] = averaged
    newest.pop("last_optimizer_state", None)
    with atomic_open(out_path, "wb") as handle:
        torch.save(newest, handle)
    return {"averaged": [p.name for p in paths], "n": len(paths)}
