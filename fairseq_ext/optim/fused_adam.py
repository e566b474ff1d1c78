"""``--optimizer fused_adam``: fairseq's Adam update computed by torch's fused or foreach kernels.

fairseq's ``adam`` (on CPU, and on GPUs without apex) updates one parameter at a time
with about ten Python-dispatched tensor ops each, i.e. ten passes over memory per
parameter. torch's fused AdamW kernel does the whole update in one vectorised pass per
tensor (on CPU and CUDA); the foreach kernels batch each op over all tensors.

The update is fairseq's, not torch's: fairseq's Adam is AdamW-style (decoupled weight
decay, ``p -= lr * wd * p``) and adds ``eps`` to ``sqrt(v)`` *before* the bias
correction, i.e. ``p -= lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)``, where torch adds
it after (``sqrt(v) / sqrt(bc2) + eps``). Passing ``eps / sqrt(bc2)`` to torch's kernel
makes the two identical up to rounding; since bc2 depends on the step count, parameters
are updated in buckets of equal step count (normally one bucket: every parameter has
a gradient at every update). The state (``step`` as an int, ``exp_avg``, ``exp_avg_sq``)
has the same layout as fairseq's Adam's.
"""
import ast
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from torch.optim.adam import adam as torch_adam
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.optim import FairseqOptimizer
from omegaconf import II, OmegaConf

from fairseq_ext._registry import register_optimizer_once

ADAM_IMPL_CHOICES = ChoiceEnum(["fused", "foreach"])


@dataclass
class FusedAdamConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.999), metadata={"help": "betas for Adam optimizer"})
    adam_eps: float = field(default=1e-8, metadata={"help": "epsilon for Adam optimizer"})
    weight_decay: float = field(
        default=0.0, metadata={"help": "decoupled weight decay (AdamW-style, as fairseq's adam)"}
    )
    adam_impl: ADAM_IMPL_CHOICES = field(
        default="fused",
        metadata={"help": "torch kernel: 'fused' (one pass per tensor) or 'foreach'"},
    )
    lr: List[float] = II("optimization.lr")


def _betas(value) -> tuple:
    """``--adam-betas`` as given on the command line ('(0.9, 0.98)') or in a config."""
    if isinstance(value, str):
        value = ast.literal_eval(value)
    elif not isinstance(value, (tuple, list)):
        value = OmegaConf.to_container(value)
    return tuple(float(b) for b in value)


class FairseqAdamW(torch.optim.Optimizer):
    """fairseq's Adam (see :class:`fairseq.optim.adam.Adam`) on torch's fused/foreach kernels."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 impl="fused"):
        if impl not in ("fused", "foreach"):
            raise ValueError(f"impl must be 'fused' or 'foreach', not {impl!r}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.impl = impl

    @property
    def supports_memory_efficient_fp16(self):
        return False  # it would keep fp16 state; fairseq's FP16Optimizer (fp32 master) works

    @property
    def supports_flat_params(self):
        return True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("fused_adam does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                buckets.setdefault((state["step"], p.device), []).append(p)
            for (step, device), params in buckets.items():
                self._update(group, params, step, device)
        return loss

    def _update(self, group, params, prev_step: int, device) -> None:
        beta1, beta2 = group["betas"]
        step = prev_step + 1
        states = [self.state[p] for p in params]
        # torch increments the step tensors itself before using them; the fused kernel
        # wants them on the parameters' device, the foreach path on the CPU.
        step_device = device if self.impl == "fused" else "cpu"
        steps = list(torch.full((len(params),), float(prev_step), device=step_device).unbind(0))
        torch_adam(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            foreach=self.impl == "foreach",
            fused=self.impl == "fused",
            decoupled_weight_decay=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"] / math.sqrt(1.0 - beta2**step),
            maximize=False,
        )
        for s in states:
            s["step"] = step


@register_optimizer_once("fused_adam", dataclass=FusedAdamConfig)
class FairseqFusedAdam(FairseqOptimizer):
    """fairseq's ``adam`` (AdamW-style decoupled weight decay), computed by torch's fused kernel.

    Same options as ``--optimizer adam`` (``--adam-betas --adam-eps --weight-decay``) plus
    ``--adam-impl {fused,foreach}``; results equal ``adam``'s up to floating-point rounding.
    """

    def __init__(self, cfg: FusedAdamConfig, params):
        super().__init__(cfg)
        self._optimizer = FairseqAdamW(params, impl=cfg.adam_impl, **self.optimizer_config)

    @property
    def optimizer_config(self):
        """Options that override those stored in a checkpoint (as fairseq's ``adam``)."""
        return {
            "lr": self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr,
            "betas": _betas(self.cfg.adam_betas),
            "eps": self.cfg.adam_eps,
            "weight_decay": self.cfg.weight_decay,
        }
