"""``--task translation_ext``: fairseq's ``translation`` task plus this project's options.

All our training-time options live in :class:`TranslationExtConfig`, the one place a
user (or ``fairseq-train --help``) finds them. The task is a thin subclass of
:class:`fairseq.tasks.translation.TranslationTask`, so data loading, generation and
BLEU validation behave exactly as in stock fairseq.
"""
from dataclasses import dataclass

from fairseq.tasks.translation import TranslationConfig, TranslationTask

from fairseq_ext._registry import register_task_once


@dataclass
class TranslationExtConfig(TranslationConfig):
    pass


@register_task_once("translation_ext", dataclass=TranslationExtConfig)
class TranslationExtTask(TranslationTask):
    cfg: TranslationExtConfig
