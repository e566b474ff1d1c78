"""Load fairseq checkpoints with ``torch.load(weights_only=True)`` on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default and refuses any global it
does not know; fairseq checkpoints carry a few harmless ones (``argparse.Namespace``
in legacy ``args``, numpy scalars in ``best_loss`` ...). We allow-list exactly those,
and keep the protection on: a checkpoint whose pickle names anything else (say
``os.system`` in a ``__reduce__`` payload) is refused before the payload can run.

fairseq's own loaders call ``torch.load`` without ``weights_only``, i.e. with the safe
default, so allow-listing is all the CLIs need. We also wrap
``checkpoint_utils.load_checkpoint_to_cpu`` so a refusal names the file and says why.
"""
import argparse
import pickle

import torch
from fairseq import checkpoint_utils

SAFE_GLOBALS = [argparse.Namespace]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint's pickle references something outside the allow-list."""


def _refusal(path, err) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refusing to load checkpoint {path}: its pickle references an object outside "
        f"fairseq_ext's allow-list of what fairseq checkpoints contain, so it was not "
        f"unpickled (nothing in it was executed). If you trust this file and it is a "
        f"legitimate checkpoint of another tool, re-save its tensors with that tool. "
        f"torch said: {str(err).splitlines()[0]}"
    )


def safe_load(path, map_location="cpu"):
    """``torch.load`` with ``weights_only=True`` and our allow-list, for our own scripts."""
    try:
        with open(path, "rb") as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, err) from None


def _wrap_fairseq_loader():
    original = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(original, "_fairseq_ext_safe", False):
        return

    def load_checkpoint_to_cpu(path, *args, **kwargs):
        try:
            return original(path, *args, **kwargs)
        except pickle.UnpicklingError as err:
            raise _refusal(path, err) from None

    load_checkpoint_to_cpu._fairseq_ext_safe = True
    load_checkpoint_to_cpu.__wrapped__ = original
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_to_cpu


torch.serialization.add_safe_globals(SAFE_GLOBALS)
_wrap_fairseq_loader()
