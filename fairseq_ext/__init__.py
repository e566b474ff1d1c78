"""fairseq_ext: a fairseq plugin for low-resource en->zh NMT.

Importing this package (what ``--user-dir fairseq_ext`` does) does exactly this, and nothing else:

- registers each component with fairseq: the ``translation_ext`` task, the
  ``transformer_prenorm*``/``transformer_postnorm`` architectures, the ``rnn_seq2seq`` and
  ``decoder_only_nmt`` models,
  the ``fused_adam`` optimizer and the ``label_smoothed_cross_entropy_fused`` criterion
  (idempotently, see :mod:`fairseq_ext._registry`);
- installs the checkpoint safety (:mod:`fairseq_ext.checkpoint_safety`): fairseq's checkpoint
  loading goes through ``torch.load(weights_only=True)`` with an allow-list and a check of the
  config strings fairseq evaluates, and its checkpoint copies become atomic;
- registers the loader-shutdown ``atexit`` hook (:mod:`fairseq_ext.loader_shutdown`);
- makes ``--user-dir`` pointing at a second copy of the plugin use the one already imported
  (:func:`fairseq_ext._registry.tolerate_second_copy_as_user_dir`).
"""
__version__ = "0.1.0"

from fairseq_ext import _registry
from fairseq_ext import checkpoint_safety  # noqa: F401  (no checkpoint can run code; atomic checkpoint copies)
from fairseq_ext import loader_shutdown  # noqa: F401  (clean exit when training stops mid-epoch)
from fairseq_ext.criterions import label_smoothed_ce_fused  # noqa: F401
from fairseq_ext.models import decoder_only  # noqa: F401
from fairseq_ext.models import rnn_seq2seq  # noqa: F401
from fairseq_ext.models import transformer_prenorm  # noqa: F401
from fairseq_ext.optim import fused_adam  # noqa: F401
from fairseq_ext.tasks import translation_ext  # noqa: F401

_registry.tolerate_second_copy_as_user_dir()
