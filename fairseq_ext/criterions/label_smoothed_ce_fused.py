"""``--criterion label_smoothed_cross_entropy_fused``: fairseq's label-smoothed cross-entropy
computed from the logits in cache-sized row blocks, without materialising log-probabilities.

fairseq's criterion builds fp32 log-probabilities for every target position and vocabulary
entry (N x V: 4,000 x 9,000 floats per batch here), then gathers the target column, sums
each row, and backpropagates through gather, sum and log_softmax: about a dozen passes
over N x V tensors, a sizeable part of a CPU training step once matmuls run in bf16.
With ``lse = logsumexp(z)`` the same quantities are, per row,

    nll    = lse - z[t]
    smooth = V * lse - sum(z)                      (= -sum over v of log p_v)
    loss   = (1 - eps - eps_i) * nll + eps_i * smooth,     eps_i = eps / (V - 1)
    dloss/dz = softmax(z) - (1 - eps - eps_i) * onehot(t) - eps_i

(the coefficients of softmax add up to 1). Forward and backward each walk the rows in
blocks that fit in cache (on a GPU: all rows at once), in fp32 whatever the logits' dtype (bf16 under ``--cpu-bf16``).
Loss, nll and gradients equal fairseq's up to rounding. Options are those of
``label_smoothed_cross_entropy``; ``--report-accuracy``, ``reduce=False`` and adaptive
softmax fall back to fairseq's own computation.
"""
import torch
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)

from fairseq_ext._registry import register_criterion_once

BLOCK_BYTES = 2 << 20  # fp32 working block per step on CPU (fits in L2/L3 cache)


def _blocks(n_rows: int, vocab: int, device: torch.device):
    """Row ranges to process at a time: cache-sized on CPU; on a GPU one launch per op."""
    rows = max(1, BLOCK_BYTES // (4 * vocab)) if device.type == "cpu" else n_rows
    return [(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


class _FusedLabelSmoothedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, epsilon: float, ignore_index: int):
        n_rows, vocab = logits.shape
        keep = target.ne(ignore_index) if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
        lse = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
        nll = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
        smooth = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
        for start, end in _blocks(n_rows, vocab, logits.device):
            z = logits[start:end].float()
            block_lse = torch.logsumexp(z, dim=-1)
            lse[start:end] = block_lse
            nll[start:end] = block_lse - z.gather(-1, target[start:end, None]).squeeze(-1)
            smooth[start:end] = vocab * block_lse - z.sum(dim=-1)
        nll = nll.masked_fill_(~keep, 0.0).sum()
        smooth = smooth.masked_fill_(~keep, 0.0).sum()
        eps_i = epsilon / (vocab - 1)
        loss = (1.0 - epsilon - eps_i) * nll + eps_i * smooth
        ctx.save_for_backward(logits, target, lse, keep)
        ctx.epsilon = epsilon
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, grad_nll):
        logits, target, lse, keep = ctx.saved_tensors
        n_rows, vocab = logits.shape
        eps_i = ctx.epsilon / (vocab - 1)
        grad_loss = grad_loss if grad_loss is not None else torch.zeros((), device=logits.device)
        grad_nll = grad_nll if grad_nll is not None else torch.zeros((), device=logits.device)
        keep = keep.float()
        # per row: a * softmax - b * onehot(target) - c, zero on ignored rows
        a = (grad_loss + grad_nll) * keep
        b = (grad_loss * (1.0 - ctx.epsilon - eps_i) + grad_nll) * keep
        c = (grad_loss * eps_i) * keep
        grad = torch.empty_like(logits)
        for start, end in _blocks(n_rows, vocab, logits.device):
            p = logits[start:end].float().sub_(lse[start:end, None]).exp_()
            p.mul_(a[start:end, None]).sub_(c[start:end, None])
            p.scatter_add_(1, target[start:end, None], -b[start:end, None])
            grad[start:end] = p
        return grad, None, None, None


def label_smoothed_ce_from_logits(logits, target, epsilon: float, ignore_index=None):
    """(loss, nll_loss), summed over rows, as fairseq's ``label_smoothed_nll_loss`` on
    ``log_softmax(logits)``; *logits* is N x V (any float dtype), *target* N."""
    return _FusedLabelSmoothedCE.apply(logits, target, float(epsilon), ignore_index)


@register_criterion_once("label_smoothed_cross_entropy_fused", dataclass=LabelSmoothedCrossEntropyCriterionConfig)
class FusedLabelSmoothedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    """``label_smoothed_cross_entropy`` from the logits in cache-sized blocks (same results)."""

    def compute_loss(self, model, net_output, sample, reduce=True):
        decoder = getattr(model, "decoder", None)
        if not reduce or getattr(decoder, "adaptive_softmax", None) is not None:
            return super().compute_loss(model, net_output, sample, reduce=reduce)
        logits = net_output[0]
        target = model.get_targets(sample, net_output)
        if self.ignore_prefix_size > 0:
            logits = logits[:, self.ignore_prefix_size:, :]
            target = target[:, self.ignore_prefix_size:]
        return label_smoothed_ce_from_logits(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), self.eps, self.padding_idx
        )
