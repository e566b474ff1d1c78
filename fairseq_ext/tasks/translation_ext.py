"""``--task translation_ext``: fairseq's ``translation`` task plus this project's options.

All our training-time options live in :class:`TranslationExtConfig`, the one place a
user (or ``fairseq-train --task translation_ext --help``) finds them. The task is a thin
subclass of :class:`fairseq.tasks.translation.TranslationTask`, so data loading,
generation and BLEU validation behave exactly as in stock fairseq; each extra behaviour
is a mixin in its own module:

- :mod:`fairseq_ext.gnorm_tracker`: per-update gradient-norm log (``--gnorm-log``);
- :mod:`fairseq_ext.cpu_bf16`: bf16 autocast on CPU (``--cpu-bf16``).
"""
from dataclasses import dataclass, field
from typing import Optional

from fairseq.tasks.translation import TranslationConfig, TranslationTask
from omegaconf import II

from fairseq_ext._registry import register_task_once
from fairseq_ext.cpu_bf16 import CpuBf16Mixin
from fairseq_ext.gnorm_tracker import GnormTrackingMixin


@dataclass
class TranslationExtConfig(TranslationConfig):
    # --- gradient-norm tracker (fairseq_ext/gnorm_tracker.py) ---
    gnorm_log: str = field(
        default="",
        metadata={"help": "where to append the per-update gradient-norm log (JSON lines); "
                  "default: <save-dir>/gnorm.jsonl"},
    )
    no_gnorm_log: bool = field(
        default=False, metadata={"help": "do not record the per-update gradient norm"}
    )
    # The tracker also needs three settings of other config groups; these interpolations
    # (no help text, so no command-line flag, like TranslationConfig.train_subset) read them.
    gnorm_save_dir: str = II("checkpoint.save_dir")
    gnorm_log_interval: int = II("common.log_interval")
    gnorm_tensorboard_logdir: Optional[str] = II("common.tensorboard_logdir")
    # --- CPU bf16 mixed precision (fairseq_ext/cpu_bf16.py) ---
    cpu_bf16: bool = field(
        default=False,
        metadata={"help": "run forward passes under torch.autocast('cpu', bfloat16) "
                  "(on a CUDA model: autocast('cuda', bfloat16)); weights, gradients, loss "
                  "and optimizer state stay fp32"},
    )
    fast_dropout: bool = field(
        default=False,
        metadata={"help": "draw dropout masks on CPU with 1/8 of the generator work "
                  "(fairseq_ext/fast_dropout.py; p rounded to a multiple of 1/32768)"},
    )


@register_task_once("translation_ext", dataclass=TranslationExtConfig)
class TranslationExtTask(GnormTrackingMixin, CpuBf16Mixin, TranslationTask):
    cfg: TranslationExtConfig
