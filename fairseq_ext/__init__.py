"""fairseq_ext: a fairseq plugin for low-resource en->zh NMT.

Importing this package registers every component (``--user-dir fairseq_ext`` does
exactly that). Registration is idempotent, see :mod:`fairseq_ext._registry`.
"""
__version__ = "0.1.0"

from fairseq_ext import _registry
from fairseq_ext import checkpoint_safety  # noqa: F401  (no checkpoint can run code; atomic checkpoint copies)
from fairseq_ext import loader_shutdown  # noqa: F401  (clean exit when training stops mid-epoch)
from fairseq_ext.criterions import label_smoothed_ce_fused  # noqa: F401
from fairseq_ext.models import rnn_seq2seq  # noqa: F401
from fairseq_ext.models import transformer_prenorm  # noqa: F401
from fairseq_ext.optim import fused_adam  # noqa: F401
from fairseq_ext.tasks import translation_ext  # noqa: F401

_registry.tolerate_second_copy_as_user_dir()
