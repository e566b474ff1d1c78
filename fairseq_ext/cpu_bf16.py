"""bf16 mixed precision on CPU: ``--cpu-bf16`` of ``--task translation_ext``.

fairseq's own ``--bf16`` casts the whole model to bf16 and crashes with ``--cpu``. This
mixin instead runs the forward passes under ``torch.autocast(device, torch.bfloat16)``:
matrix products run in bf16 (about 4x the fp32 matmul rate on CPUs with AVX-512 BF16 or
AMX) while the weights, gradients, optimizer state and the loss stay fp32:

- training: only the criterion call (model forward + loss) runs under autocast; the
  backward pass runs outside it, as PyTorch recommends (backward ops follow the dtypes
  autocast chose in the forward). fairseq's decoders compute log-probabilities with
  ``log_softmax(..., dtype=float32)``, so the label-smoothed cross-entropy and every loss
  reduction run in fp32 on fp32 log-probabilities;
- validation and generation (``fairseq-generate --task translation_ext --cpu-bf16``,
  BLEU during validation): the whole step runs under autocast, so each weight is cast to
  bf16 once per batch (autocast's cast cache) rather than once per decoding step.

oneDNN (which runs the bf16 matmuls on CPU) caches up to 1024 primitives, and a cached
matmul primitive keeps memory sized by its shapes; batch shapes change every update, so
a strong-model run grew to 5.5 GB resident after 600 updates (fp32: under 2 GB). With the
option on, ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` defaults to 32 (unless
set in the environment; oneDNN reads it when it creates its first primitive), which keeps
the reuse within an update (same speed here) and bounds the memory.

On a CUDA model the same option autocasts to bf16 on the GPU (no loss scaling needed),
which stock fairseq does not offer; fairseq's ``--fp16``/``--bf16``/``--amp`` are
separate mechanisms and cannot be combined with it.
"""
import contextlib
import logging
import os

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer

from fairseq_ext.fast_dropout import use_fast_dropout

logger = logging.getLogger(__name__)

_CONFLICTING_OPTIMIZERS = (AMPOptimizer, FP16Optimizer, MemoryEfficientFP16Optimizer)


def _device_type(model) -> str:
    param = next(model.parameters(), None)
    return "cpu" if param is None else param.device.type


@contextlib.contextmanager
def bf16_autocast(device_type: str):
    """The autocast context ``--cpu-bf16`` uses on *device_type* ('cpu' or 'cuda').

    On CPU it also routes scaled_dot_product_attention to the math kernel: the bf16
    flash-attention kernel for CPU is ~2x slower (backward) than fp32, while the math
    kernel computes bf16 attention in fp32 internally (faster and more accurate here).
    """
    with torch.autocast(device_type, dtype=torch.bfloat16):
        if device_type != "cpu":
            yield
            return
        with sdpa_kernel([SDPBackend.MATH]):
            yield


class _AutocastCriterion:
    """Calls the wrapped criterion under bf16 autocast; every attribute passes through."""

    def __init__(self, criterion, device_type: str):
        self._criterion = criterion
        self._device_type = device_type

    def __call__(self, *args, **kwargs):
        with bf16_autocast(self._device_type):
            return self._criterion(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._criterion, name)


ONEDNN_CACHE_CAPACITY = "32"


class CpuBf16Mixin:
    """Task mixin for the CPU speed options: ``cfg.cpu_bf16`` (above) and ``cfg.fast_dropout``
    (:mod:`fairseq_ext.fast_dropout`). Passes model, optimizer and sample on unchanged."""

    _cpu_bf16_checked = False

    def __init__(self, cfg, *args, **kwargs):
        super().__init__(cfg, *args, **kwargs)
        if getattr(cfg, "cpu_bf16", False):
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if getattr(self.cfg, "fast_dropout", False):
            switched = use_fast_dropout(model)
            logger.info(f"--fast-dropout: {switched} dropout modules draw masks with fast_dropout")
        return model

    def _bf16_device(self, model, optimizer=None):
        if not getattr(self.cfg, "cpu_bf16", False):
            return None
        if isinstance(optimizer, _CONFLICTING_OPTIMIZERS):
            raise ValueError(
                "--cpu-bf16 cannot be combined with fairseq's --fp16/--bf16/--amp "
                "(they already set the precision); use one of them"
            )
        device_type = _device_type(model)
        if not self._cpu_bf16_checked:
            self._cpu_bf16_checked = True
            if device_type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
                logger.warning("--cpu-bf16: this CPU has no native bf16 support; "
                               "expect it to be slower than fp32")
            logger.info(f"--cpu-bf16: forward passes run under bf16 autocast on {device_type}")
        return device_type

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        device_type = self._bf16_device(model, optimizer)
        if device_type is not None:
            criterion = _AutocastCriterion(criterion, device_type)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        device_type = self._bf16_device(model)
        if device_type is None:
            return super().valid_step(sample, model, criterion)
        with bf16_autocast(device_type):
            return super().valid_step(sample, model, criterion)

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        device_type = self._bf16_device(models[0])
        if device_type is None:
            return super().inference_step(generator, models, sample, prefix_tokens, constraints)
        with bf16_autocast(device_type):
            return super().inference_step(generator, models, sample, prefix_tokens, constraints)
