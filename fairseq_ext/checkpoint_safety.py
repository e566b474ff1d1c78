"""Load fairseq checkpoints so that no checkpoint can run code, and copy them atomically.

A checkpoint could run code in two ways; we refuse both before fairseq sees the state:

- its pickle. We unpickle with ``torch.load(weights_only=True)`` and an allow-list of the
  few harmless globals fairseq checkpoints carry (``argparse.Namespace`` in legacy ``args``,
  numpy scalars in ``best_loss`` ...); a pickle naming anything else (``os.system`` in a
  ``__reduce__`` payload) is refused. fairseq's loader gets ``weights_only=True`` whatever it
  passes itself: inside ``fairseq.checkpoint_utils`` the name ``torch`` is a stand-in whose
  ``load()`` always passes it. An explicit ``weights_only=True`` is the one setting that
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` does not override, and a caller's
  ``weights_only=False`` (upstream fairseq's newest loader) is ignored.
- its config. fairseq ``eval()``s some config strings when it builds the model, optimizer or
  task (:data:`EVALUATED_FIELDS`). Each of them found as a string anywhere under
  ``state["cfg"]`` or the legacy ``state["args"]`` must be a Python literal
  (``ast.literal_eval``), else the checkpoint is refused, naming the field.

:func:`safe_load` (our scripts) and fairseq's loader (every CLI, ``fairseq-train
--restore-file``, hub ``from_pretrained``) both apply both checks; importing this module
installs the fairseq side.

fairseq's ``save_checkpoint`` writes its first checkpoint atomically and then copies it to
the others (``checkpoint_last.pt``, ``checkpoint_best.pt`` ...) with ``PathManager.copy``,
in place; a kill during that copy would leave a truncated ``checkpoint_last.pt`` that blocks
every resume. Inside ``fairseq.checkpoint_utils`` that copy goes to a temporary name, renamed.
"""
import argparse
import ast
import pickle
import re
from collections import deque
from collections.abc import Mapping

import numpy
import torch
from omegaconf import OmegaConf

try:  # numpy >= 2 moved the scalar constructor
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import scalar as _numpy_scalar
from fairseq import checkpoint_utils
from fairseq.file_io import PathManager

from nmt_suite.files import atomic_copy

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

# Every config field that fairseq (fairseq/ and fairseq_cli/) passes to eval(), directly or
# through utils.eval_str_list / eval_str_dict / eval_bool, by its name in a checkpoint's
# config. (fairseq.dataclass.utils.eval_str_list uses ast.literal_eval: safe.) Configs whose
# defaults are expressions rather than literals (fconv's "[(512, 3)] * 20", wav2vec's
# conv_feature_layers) are refused with the rest.
EVALUATED_FIELDS = frozenset({
    # optim/adam.py, cpu_adam.py, adamax.py, adafactor.py, fused_lamb.py
    "adam_betas", "adamax_betas", "adafactor_eps", "lamb_betas",
    # modules/multihead_attention.py, from the transformer's flat or nested (encoder.*) config
    "encoder_xformers_att_config", "decoder_xformers_att_config", "xformers_att_config",
    # models/transformer, lstm, lstm_lm, fconv_lm, lightconv, transformer_lm; model_parallel
    "adaptive_softmax_cutoff", "adaptive_input_cutoff",
    # models/lightconv.py, lightconv_lm.py (argument types)
    "encoder_kernel_size_list", "decoder_kernel_size_list", "encoder_glu", "decoder_glu", "weight_softmax",
    # models/fconv.py, fconv_lm.py, fconv_self_att.py, lstm.py
    "encoder_layers", "decoder_layers", "encoder_attention", "decoder_attention", "self_attention",
    "project_input", "gated_attention", "downsample", "pretrained",
    # models/transformer_lm.py, lightconv_lm.py
    "character_filters",
    # models/wav2vec, hubert, multires_hubert, speech_to_text/s2t_wav_transformer; data/audio
    "conv_feature_layers", "conv_aggregator_layers", "override_encoder_layers", "feature_encoder_spec",
    # criterions/ctc.py
    "wer_args",
    # tasks/multilingual_translation.py, online_backtranslation.py, data/multilingual
    "left_pad_source", "left_pad_target", "extra_data", "extra_lang_pairs", "langtoks", "sampling_weights",
    # distributed/utils.py, model_parallel/models/pipeline_parallel_transformer
    "pipeline_balance", "pipeline_devices", "pipeline_encoder_balance", "pipeline_encoder_devices",
    "pipeline_decoder_balance", "pipeline_decoder_devices",
    # fairseq_cli/validate.py, eval_lm.py
    "model_overrides",
})
_SHOWN_CHARS = 80  # of a refused config value, in the message


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Loading the checkpoint could run code: an unknown pickle global, or a config string fairseq evaluates."""


def _refusal(path, reason) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refusing to load checkpoint {path}: {reason}; it was not loaded and nothing in it ran. "
        f"Only load checkpoints from sources you trust."
    )


def _pickle_refusal(path, err) -> UnsafeCheckpointError:
    # torch's message starts with advice to pass weights_only=False; we only keep the fact.
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    culprit = found.group(1) if found else "an object torch could not unpickle safely"
    return _refusal(path, f"its pickle references {culprit}, which is not in fairseq_ext's allow-list "
                          f"of what fairseq checkpoints contain")


def _evaluated_values(state):
    """(dotted name, value) of each EVALUATED_FIELDS entry under state["cfg"] and state["args"]."""
    if not isinstance(state, Mapping):
        return
    todo = deque((name, state[name]) for name in ("cfg", "args") if name in state)
    seen = set()
    while todo:
        where, node = todo.popleft()
        if OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=False)
        if isinstance(node, argparse.Namespace):
            node = vars(node)
        if id(node) in seen:  # a pickle can make containers that contain themselves
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(key, str) and key in EVALUATED_FIELDS:
                    yield f"{where}.{key}", value
                else:
                    todo.append((f"{where}.{key}", value))
        elif isinstance(node, (list, tuple, set, frozenset)):
            todo.extend((f"{where}[{i}]", value) for i, value in enumerate(node))


def _is_literal(source: str) -> bool:
    try:
        ast.literal_eval(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def check_config_strings(state, path) -> None:
    """Refuse ``state`` if a config value that fairseq eval()s is source other than a Python literal."""
    for where, value in _evaluated_values(state):
        # eval() runs bytes as source too, decoded by rules of its own; no config holds bytes
        if isinstance(value, (bytes, bytearray)) or (isinstance(value, str) and not _is_literal(value)):
            shown = repr(value)
            if len(shown) > _SHOWN_CHARS:
                shown = shown[:_SHOWN_CHARS] + "..."
            raise _refusal(path, f"{where} is {shown}, not a Python literal, and fairseq evaluates "
                                 f"this field as Python code")


def _load(f, path, map_location=None, mmap=None, **pickle_load_args):
    try:
        state = torch.load(f, map_location=map_location, weights_only=True, mmap=mmap, **pickle_load_args)
    except pickle.UnpicklingError as err:
        raise _pickle_refusal(path, err) from None
    check_config_strings(state, path)
    return state


def safe_load(path, map_location="cpu", mmap=False):
    """``torch.load`` with ``weights_only=True`` and our allow-list, config strings checked, for our scripts.

    ``mmap=True`` maps the tensors instead of reading them: cheap when only metadata is needed.
    """
    return _load(str(path), path, map_location=map_location, mmap=mmap)


class _TorchWithSafeLoad:
    """``torch`` as fairseq.checkpoint_utils sees it: the module itself but for :meth:`load`."""

    fairseq_ext_safe = True

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
        """``torch.load`` with ``weights_only=True`` whatever the caller passes, config strings checked."""
        return _load(f, getattr(f, "name", f), map_location=map_location, mmap=mmap, **pickle_load_args)


class _PathManagerWithAtomicCopy:
    """fairseq's ``PathManager`` as fairseq.checkpoint_utils sees it: the same but for :meth:`copy`."""

    fairseq_ext_safe = True

    def __getattr__(self, name):
        return getattr(PathManager, name)

    @staticmethod
    def copy(src_path, dst_path, overwrite=False) -> bool:
        """``PathManager.copy`` to a temporary name beside ``dst_path``, then renamed over it."""
        if not PathManager.supports_rename(dst_path):
            return PathManager.copy(src_path, dst_path, overwrite=overwrite)
        atomic_copy(src_path, dst_path, copy=lambda src, tmp: PathManager.copy(src, tmp, overwrite=True))
        return True


torch.serialization.add_safe_globals(SAFE_GLOBALS)
# A second copy of the plugin (another checkout as --user-dir) finds them installed.
if not getattr(checkpoint_utils.torch, "fairseq_ext_safe", False):
    checkpoint_utils.torch = _TorchWithSafeLoad()
if not getattr(checkpoint_utils.PathManager, "fairseq_ext_safe", False):
    checkpoint_utils.PathManager = _PathManagerWithAtomicCopy()
