"""--optimizer fused_adam: the same updates as fairseq's adam (AdamW-style), via torch's kernels."""
import pytest
import torch
from fairseq import optim, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.adam import Adam as FairseqAdamReference

from conftest import USER_DIR
from fairseq_ext.checkpoint_safety import safe_load
from fairseq_ext.optim.fused_adam import FairseqAdamW, FairseqFusedAdam

SHAPES = [(50, 16), (16,), (16, 16), (7,)]


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).requires_grad_() for s in SHAPES]


def _run(optimizer, params, steps, grads_for_step):
    for step in range(steps):
        for p, g in zip(params, grads_for_step(step)):
            p.grad = None if g is None else g.clone()
        optimizer.step()


def _grads(step, skip_second_on_odd=False):
    gen = torch.Generator().manual_seed(100 + step)
    scale = 10.0 ** -(step % 4)  # small gradients make eps (and where it is added) matter
    grads = [torch.randn(s, generator=gen) * scale for s in SHAPES]
    if skip_second_on_odd and step % 2:
        grads[1] = None  # a parameter without gradient: fairseq skips it, step count lags
    return grads


@pytest.mark.parametrize("weight_decay, betas, eps, impl, skip", [
    (0.0, (0.9, 0.999), 1e-8, "fused", False),
    (0.0, (0.9, 0.98), 1e-9, "fused", False),
    (0.01, (0.9, 0.98), 1e-8, "fused", False),
    (0.1, (0.8, 0.9), 1e-6, "fused", False),
    (0.01, (0.9, 0.98), 1e-8, "foreach", False),
    (0.0, (0.9, 0.98), 1e-8, "foreach", True),
    (0.01, (0.9, 0.98), 1e-6, "fused", True),
])
def test_matches_fairseq_adam(weight_decay, betas, eps, impl, skip):
    hp = dict(lr=1e-2, betas=betas, eps=eps, weight_decay=weight_decay)
    ref_params, new_params = _params(), _params()
    ref = FairseqAdamReference(ref_params, **hp)
    new = FairseqAdamW(new_params, impl=impl, **hp)
    _run(ref, ref_params, 6, lambda s: _grads(s, skip))
    _run(new, new_params, 6, lambda s: _grads(s, skip))
    for p_ref, p_new in zip(ref_params, new_params):
        torch.testing.assert_close(p_new, p_ref, rtol=1e-5, atol=1e-6)
        s_ref, s_new = ref.state[p_ref], new.state[p_new]
        assert s_new["step"] == s_ref["step"]
        for key in ("exp_avg", "exp_avg_sq"):  # tolerance relative to the largest entry
            scale = s_ref[key].abs().max().item()
            torch.testing.assert_close(s_new[key], s_ref[key], rtol=1e-5, atol=1e-5 * scale)
    assert new_params[0].grad is not None and not torch.equal(new_params[0], _params()[0])


def _fairseq_optimizer(*args):
    parser = options.get_training_parser()
    ns = options.parse_args_and_arch(parser, ["unused-data", "--user-dir", str(USER_DIR),
                                              "--arch", "transformer_prenorm_tiny", *args])
    cfg = convert_namespace_to_omegaconf(ns)
    params = _params()
    return optim.build_optimizer(cfg.optimizer, params), params


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_cli_options_build_the_same_optimizer_as_adam(impl):
    common = ["--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-7", "--weight-decay", "0.01", "--lr", "0.003"]
    ref, ref_params = _fairseq_optimizer("--optimizer", "adam", *common)
    new, new_params = _fairseq_optimizer("--optimizer", "fused_adam", "--adam-impl", impl, *common)
    assert isinstance(new, FairseqFusedAdam)
    assert new.optimizer_config == ref.optimizer_config
    for step in range(4):
        for opt, params in ((ref, ref_params), (new, new_params)):
            for p, g in zip(params, _grads(step)):
                p.grad = g.clone()
            opt.set_lr(0.003 / (step + 1))  # what fairseq's lr scheduler does between updates
            opt.step()
    for p_ref, p_new in zip(ref_params, new_params):
        torch.testing.assert_close(p_new, p_ref, rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_through_a_safe_checkpoint(tmp_path):
    """Optimizer state survives torch.save + weights-only loading and training continues identically."""
    hp = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    params, resumed_params = _params(), _params()
    opt = FairseqAdamW(params, **hp)
    _run(opt, params, 3, _grads)
    torch.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, tmp_path / "ckpt.pt")

    saved = safe_load(tmp_path / "ckpt.pt")
    with torch.no_grad():
        for p, q in zip(resumed_params, saved["params"]):
            p.copy_(q)
    resumed = FairseqAdamW(resumed_params, **hp)
    resumed.load_state_dict(saved["optimizer"])
    _run(opt, params, 2, lambda s: _grads(s + 3))
    _run(resumed, resumed_params, 2, lambda s: _grads(s + 3))
    for p, q in zip(params, resumed_params):
        torch.testing.assert_close(q, p, rtol=0, atol=0)
    assert resumed.state[resumed_params[0]]["step"] == 5
