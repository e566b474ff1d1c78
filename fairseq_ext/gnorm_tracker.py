"""Per-update gradient-norm log: ``<save-dir>/gnorm.jsonl``, one JSON object per update.

fairseq logs ``gnorm`` averaged over ``--log-interval`` updates, which smooths away exactly
the spikes one wants to see. This module records, for every optimizer update, the value
fairseq itself compares with ``--clip-norm``:

    {"update": 17, "epoch": 1, "gnorm": 3.52, "clipped": true, "clip_norm": 1.0,
     "lr": 0.0017, "loss": 7.91, "ntokens": 3733}

- ``update``: fairseq's ``num_updates`` after this update (what ``--log-interval 1`` prints);
- ``gnorm``: the global L2 norm of the gradient before clipping, over all parameters, after
  summing the ``--update-freq`` micro-batches and all workers, unscaled under fp16/AMP;
- ``clipped``: ``gnorm > clip_norm > 0`` (fairseq's own ``clip`` test); ``clip_norm`` as used;
- ``lr``: the learning rate this update was taken with;
- ``loss`` (base 2, per ``sample_size``, as fairseq prints it) and ``ntokens`` (target tokens),
  summed over micro-batches and workers.

An attempt whose norm is not finite (fp16/AMP overflow, or the NaN that stops an fp32 run)
applies no update; it is kept as ``{"update": N, "overflow": true, "gnorm": null, ...}`` with
the number the update would have had, and the successful retry follows with the same number.

Writing: values stay on the device and are copied to the host in one transfer per flush;
flushes happen every ``--log-interval`` updates, before every checkpoint is written, at epoch
and validation boundaries and at exit, so a crash loses at most one interval and every
checkpoint's updates are on disk. When training resumes (``--restore-file``) from update N,
records after N are dropped first (atomically), so the file never repeats or skips an
update. Only rank 0 records. With ``--tensorboard-logdir`` each update's norm is also written
as the scalar ``gnorm`` under ``<tensorboard-logdir>/train_gnorm``.
"""
import json
import logging
import math
import multiprocessing.util
import os
from collections import defaultdict
from pathlib import Path

import torch
from fairseq.distributed import utils as distributed_utils

from nmt_suite.gnorm_log import FILE_NAME, TENSORBOARD_SUBDIR, truncate_gnorm_log

logger = logging.getLogger(__name__)


def _host_values(values):
    """Replace tensors in ``values`` by Python floats with one device->host copy per device."""
    out = list(values)
    by_device = defaultdict(list)
    for i, v in enumerate(out):
        if torch.is_tensor(v):
            by_device[v.device].append(i)
    for indices in by_device.values():
        host = torch.stack([out[i].detach().reshape(()).float() for i in indices]).cpu().tolist()
        for i, v in zip(indices, host):
            out[i] = v
    return out


class _Attempt:
    """One call of the optimizer's clip_grad_norm, waiting for the update's statistics."""

    __slots__ = ("update", "epoch", "gnorm", "clip_norm", "lr", "loss_sum", "sample_size",
                 "ntokens", "applied")

    def __init__(self, update, epoch, gnorm, clip_norm, lr):
        self.update, self.epoch, self.gnorm = update, epoch, gnorm
        self.clip_norm, self.lr = float(clip_norm), lr
        self.loss_sum = self.sample_size = self.ntokens = None
        self.applied = False


class GnormTracker:
    """Buffers per-update gradient norms (as device tensors) and appends them to a JSON-lines
    file every ``flush_every`` updates. Independent of fairseq's trainer; the mixin feeds it."""

    def __init__(self, path, flush_every: int, tensorboard_dir=None):
        self.path = Path(path)
        self.flush_every = max(1, int(flush_every))
        self.tensorboard_dir = tensorboard_dir
        self._buffer = []  # finished attempts, oldest first
        self._pending = None  # attempt whose statistics have not arrived yet
        self._file = None
        self._writer = None

    def start(self, num_updates: int):
        """Open the log for training that continues after update ``num_updates``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        last = truncate_gnorm_log(self.path, num_updates)
        if last < num_updates:
            logger.warning("%s: log ends at update %d but training resumes after update %d; "
                           "updates %d-%d are missing from it", self.path, last, num_updates,
                           last + 1, num_updates)
        self._file = open(self.path, "a", encoding="utf-8")
        if self.tensorboard_dir:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events of an earlier attempt at the updates we are about to redo
            self._writer = SummaryWriter(os.path.join(self.tensorboard_dir, TENSORBOARD_SUBDIR),
                                         purge_step=num_updates + 1)
        # atexit does not run in fairseq's spawned DDP workers; multiprocessing's exit
        # function does, in the main process and in spawned children alike.
        multiprocessing.util.Finalize(self, self.close, exitpriority=100)

    @property
    def started(self) -> bool:
        return self._file is not None

    def record_norm(self, update, epoch, gnorm, clip_norm, lr):
        """The optimizer computed ``gnorm`` (a tensor, left on its device) for ``update``."""
        self._settle_pending()
        self._pending = _Attempt(update, epoch, gnorm, clip_norm, lr)

    def record_overflow(self, update, epoch, clip_norm, lr):
        """The optimizer raised on a non-finite norm (fp16 loss-scale overflow)."""
        self._settle_pending()
        self._buffer.append(_Attempt(update, epoch, None, clip_norm, lr))

    def record_stats(self, loss_sum, sample_size, ntokens):
        """The trainer reduced the statistics of an applied update: the pending attempt is done."""
        attempt, self._pending = self._pending, None
        if attempt is None:
            return
        attempt.applied = True
        attempt.loss_sum, attempt.sample_size, attempt.ntokens = loss_sum, sample_size, ntokens
        self._buffer.append(attempt)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def _settle_pending(self):
        # fairseq reduces statistics for every applied update, so an attempt still pending
        # when the next one starts (or at a flush boundary) applied nothing: an AMP overflow
        # or the NaN that is about to stop training.
        if self._pending is not None:
            self._buffer.append(self._pending)
            self._pending = None

    def flush(self, settle=False):
        """Write buffered records. ``settle``: also the pending attempt (no update follows it)."""
        if settle:
            self._settle_pending()
        if not self._buffer or self._file is None:
            return
        attempts, self._buffer = self._buffer, []
        fields = ("gnorm", "lr", "loss_sum", "sample_size", "ntokens")
        flat = _host_values(getattr(a, name) for a in attempts for name in fields)
        lines = []
        for i, a in enumerate(attempts):
            gnorm, lr, loss_sum, sample_size, ntokens = flat[i * len(fields):(i + 1) * len(fields)]
            record = {"update": a.update, "epoch": a.epoch}
            if a.applied and gnorm is not None and math.isfinite(gnorm):
                record.update(gnorm=gnorm, clipped=gnorm > a.clip_norm > 0)
            else:
                record.update(gnorm=None, overflow=True, clipped=False)
            loss = None
            if loss_sum is not None and sample_size:
                loss = loss_sum / sample_size / math.log(2)
            record.update(clip_norm=a.clip_norm, lr=lr, loss=loss,
                          ntokens=None if ntokens is None else int(ntokens))
            lines.append(json.dumps(record) + "\n")
            if self._writer is not None and record["gnorm"] is not None:
                self._writer.add_scalar("gnorm", record["gnorm"], a.update)
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        if self._file is None:
            return
        try:
            self.flush(settle=True)
        except Exception as err:  # a dying process (e.g. a CUDA error) must still exit
            logger.warning("could not write the last gradient norms to %s: %s", self.path, err)
        self._file.close()
        self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class GnormTrackingMixin:
    """Feeds a :class:`GnormTracker` from fairseq's task hooks.

    Extension point: fairseq's Trainer computes the norm in ``self.optimizer.clip_grad_norm``
    (via ``Trainer.clip_grad_norm``) once per update, after all ``--update-freq`` backward
    passes, the all-reduce and the fp16/AMP unscaling; that return value is what it logs and
    clips with. The task first sees that optimizer object in ``train_step``, so we wrap the
    bound method on that one instance there (not the class, not the Trainer: nothing else is
    affected, and the inner fp32 optimizer that FP16/AMP wrappers delegate to is not counted
    twice). The other task hooks supply the rest: ``begin_epoch`` (epoch), ``reduce_metrics``
    with the criterion in training mode (the update's loss and tokens, summed over
    micro-batches and workers exactly as fairseq logs them; it runs only for applied updates),
    ``state_dict`` (a checkpoint is being written: flush first).
    """

    _gnorm = None
    _gnorm_setup_done = False
    _gnorm_epoch = None
    _gnorm_update_num = 0

    def _gnorm_tracker(self, update_num):
        if not self._gnorm_setup_done:
            self._gnorm_setup_done = True
            cfg = self.cfg
            if not cfg.no_gnorm_log and distributed_utils.get_global_rank() == 0:
                path = cfg.gnorm_log or os.path.join(cfg.gnorm_save_dir, FILE_NAME)
                self._gnorm = GnormTracker(path, cfg.gnorm_log_interval,
                                           tensorboard_dir=cfg.gnorm_tensorboard_logdir)
                self._gnorm.start(update_num)
                logger.info("recording the gradient norm of every update in %s", path)
        return self._gnorm

    def _gnorm_wrap(self, optimizer, tracker):
        if getattr(optimizer.clip_grad_norm, "_gnorm_tracker", None) is tracker:
            return
        original = optimizer.clip_grad_norm

        def clip_grad_norm(max_norm, aggregate_norm_fn=None):
            update = self._gnorm_update_num + 1
            try:
                gnorm = original(max_norm, aggregate_norm_fn)
            except (OverflowError, FloatingPointError):
                tracker.record_overflow(update, self._gnorm_epoch, max_norm, optimizer.get_lr())
                raise
            tracker.record_norm(update, self._gnorm_epoch, gnorm, max_norm, optimizer.get_lr())
            return gnorm

        clip_grad_norm._gnorm_tracker = tracker
        optimizer.clip_grad_norm = clip_grad_norm

    def begin_epoch(self, epoch, model):
        self._gnorm_epoch = epoch
        if self._gnorm is not None:
            self._gnorm.flush(settle=True)
        super().begin_epoch(epoch, model)

    def begin_valid_epoch(self, epoch, model):
        if self._gnorm is not None:
            self._gnorm.flush(settle=True)
        super().begin_valid_epoch(epoch, model)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False,
                   **kwargs):
        tracker = self._gnorm_tracker(update_num)
        if tracker is not None:
            self._gnorm_update_num = update_num
            self._gnorm_wrap(optimizer, tracker)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad,
                                  **kwargs)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if self._gnorm is not None and criterion.training:
            def total(key):
                values = [log[key] for log in logging_outputs if key in log]
                return sum(values) if values else None

            self._gnorm.record_stats(total("loss"), total("sample_size"), total("ntokens"))

    def state_dict(self):
        if self._gnorm is not None:
            self._gnorm.flush(settle=True)
        return super().state_dict()
