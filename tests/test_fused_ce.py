"""--criterion label_smoothed_cross_entropy_fused: fairseq's numbers, computed from the logits."""
import pytest
import torch
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

import fairseq_ext.criterions.label_smoothed_ce_fused as fused

PAD = 1


def _reference(logits, target, eps):
    logits = logits.detach().clone().requires_grad_()
    lprobs = torch.log_softmax(logits, dim=-1, dtype=torch.float32)  # as fairseq's decoder does
    loss, nll = label_smoothed_nll_loss(lprobs, target, eps, ignore_index=PAD)
    loss.backward()
    return loss, nll, logits.grad


def _fused(logits, target, eps):
    logits = logits.detach().clone().requires_grad_()
    loss, nll = fused.label_smoothed_ce_from_logits(logits, target, eps, PAD)
    loss.backward()
    return loss, nll, logits.grad


@pytest.mark.parametrize("rows, vocab, eps, dtype, block_bytes", [
    (37, 11, 0.1, torch.float32, 1 << 21),
    (300, 1000, 0.1, torch.float32, 4096),      # many blocks, one row each
    (300, 1000, 0.0, torch.float32, 50_000),    # no smoothing, ragged last block
    (256, 5000, 0.2, torch.bfloat16, 1 << 21),  # bf16 logits as under --cpu-bf16
])
def test_matches_fairseq_label_smoothed_nll_loss(monkeypatch, rows, vocab, eps, dtype, block_bytes):
    monkeypatch.setattr(fused, "BLOCK_BYTES", block_bytes)
    gen = torch.Generator().manual_seed(rows)
    logits = (torch.randn(rows, vocab, generator=gen) * 4).to(dtype)
    target = torch.randint(4, vocab, (rows,), generator=gen)
    target[::7] = PAD  # padding positions contribute nothing
    ref, new = _reference(logits, target, eps), _fused(logits, target, eps)
    assert new[0].dtype == new[1].dtype == torch.float32
    torch.testing.assert_close(new[0], ref[0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(new[1], ref[1], rtol=1e-5, atol=1e-3)
    assert new[2].dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 8e-3  # bf16 gradients: one rounding of each entry
    torch.testing.assert_close(new[2].float(), ref[2].float(), rtol=tol, atol=tol)
    assert new[2][::7].abs().max() == 0
