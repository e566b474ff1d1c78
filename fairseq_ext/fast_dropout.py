"""Faster dropout masks on CPU (``--fast-dropout`` of ``--task translation_ext``).

On CPU, ``F.dropout`` draws its mask with ``bernoulli_``: one generator call and a
float comparison per element, about 15 ms per million elements on one core here. With
bf16 matmuls that became the largest cost of a training step after the matmuls (the
strong model applies 32 dropouts per step). Here one 64-bit draw of torch's generator
gives four 16-bit lanes; the low 15 bits of each lane are uniform, so an element is
dropped when its lane value is below ``round(p * 32768)``: 1/8 of the generator work,
and integer comparisons. The drop probability is thus p rounded to a multiple of
1/32768 (0.3 -> 0.29999); kept elements are scaled by 1 / (1 - that probability), so
the expectation is exact. Masks come from torch's seeded CPU generator (reproducible),
but differ from stock fairseq's draws. Tensors not on the CPU use ``F.dropout``.
"""
import torch
import torch.nn.functional as F
from fairseq.modules.fairseq_dropout import FairseqDropout

_LANE_BITS = 15
_LANE_VALUES = 1 << _LANE_BITS


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of *x* with drop probability *p* (rounded to 1/32768)."""
    threshold = round(p * _LANE_VALUES)
    if x.device.type != "cpu" or threshold <= 0 or threshold >= _LANE_VALUES:
        return F.dropout(x, p=p, training=True)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()
    lanes = words.view(torch.int16)[:n].view(x.shape)
    drop = lanes.bitwise_and_(_LANE_VALUES - 1).lt(threshold)
    scale = _LANE_VALUES / (_LANE_VALUES - threshold)
    return (x * scale).masked_fill_(drop, 0.0)


class FastFairseqDropout(FairseqDropout):
    """:class:`FairseqDropout` drawing its masks with :func:`fast_dropout`."""

    def forward(self, x, inplace: bool = False):
        if self.p > 0 and (self.training or self.apply_during_inference):
            return fast_dropout(x, self.p)
        return x


def use_fast_dropout(model: torch.nn.Module) -> int:
    """Switch every plain FairseqDropout of *model* to :class:`FastFairseqDropout` in place.

    Dropout modules hold no parameters or buffers, so state dicts and checkpoints are
    unchanged. Returns the number of modules switched.
    """
    switched = 0
    for module in model.modules():
        if type(module) is FairseqDropout:
            module.__class__ = FastFairseqDropout
            switched += 1
    return switched
