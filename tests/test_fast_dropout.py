"""--fast-dropout: dropout masks from 15-bit lanes of 64-bit draws."""
import pytest
import torch
from fairseq.modules.fairseq_dropout import FairseqDropout

from fairseq_ext.fast_dropout import FastFairseqDropout, fast_dropout, use_fast_dropout


@pytest.mark.parametrize("p, dtype", [(0.1, torch.float32), (0.3, torch.float32), (0.3, torch.bfloat16),
                                      (0.5, torch.float32), (0.9, torch.float32)])
def test_drop_rate_scale_and_gradient(p, dtype):
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 2.0, dtype=dtype, requires_grad=True)
    y = fast_dropout(x, p)
    dropped = y == 0
    assert dropped.float().mean().item() == pytest.approx(p, abs=3e-3)  # 1e6 draws: sd < 5e-4
    kept = y[~dropped].float()
    assert torch.allclose(kept, torch.full_like(kept, 2.0 / (1 - round(p * 32768) / 32768)), rtol=1e-2)
    assert y.float().mean().item() == pytest.approx(2.0, rel=1e-2)  # unbiased
    y.sum().backward()
    assert torch.equal(x.grad == 0, dropped)  # gradient flows through kept elements only


def test_masks_follow_the_torch_seed_and_shapes():
    x = torch.ones(3, 5, 7)
    torch.manual_seed(1)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(1)
    b = fast_dropout(x, 0.3)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, fast_dropout(x, 0.3))
    assert fast_dropout(torch.ones(1), 0.5).shape == (1,)  # fewer elements than one draw's lanes


def test_use_fast_dropout_switches_modules_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), FairseqDropout(0.3), FairseqDropout(0.0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_fast_dropout(model) == 2
    assert all(type(m) is FastFairseqDropout for m in list(model)[1:])
    assert state.keys() == model.state_dict().keys()
    model.eval()
    x = torch.randn(8, 4)
    assert torch.equal(model(x), model[0](x))  # identity at inference
    model.train()
    assert (model(torch.ones(64, 4)) == 0).any()
