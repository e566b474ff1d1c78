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
import re

import numpy
import torch

try:  # numpy >= 2 moved the scalar constructor
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import scalar as _numpy_scalar
from fairseq import checkpoint_utils

# Everything a fairseq checkpoint may carry besides tensors and builtin containers:
# the legacy ``args`` namespace, and numpy scalars, which reach ``best``/``val_loss``
# when a validation metric comes out as a numpy float.
SAFE_GLOBALS = [
    argparse.Namespace,
    numpy.dtype,
    numpy.dtypes.Float64DType,
    numpy.dtypes.Float32DType,
    numpy.dtypes.Int64DType,
    _numpy_scalar,
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint's pickle references something outside the allow-list."""


def _refusal(path, err) -> UnsafeCheckpointError:
    # torch's message starts with advice to pass weights_only=False; we only keep the fact.
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    culprit = found.group(1) if found else "an object torch could not unpickle safely"
    return UnsafeCheckpointError(
        f"refusing to load checkpoint {path}: its pickle references {culprit}, which is "
        f"not in fairseq_ext's allow-list of what fairseq checkpoints contain; it was not "
        f"unpickled and nothing in it ran. Only load checkpoints from sources you trust."
    )


def safe_load(path, map_location="cpu", mmap=False):
    """``torch.load`` with ``weights_only=True`` and our allow-list, for our own scripts.

    ``mmap=True`` maps the tensors instead of reading them: cheap when only metadata is needed.
    """
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True, mmap=mmap)
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
