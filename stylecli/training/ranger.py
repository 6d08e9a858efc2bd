"""Ranger: rectified Adam with gradient centralization, wrapped in Lookahead; the optimizer of the e4e recipe.

Written to the semantics of the official optimizer (omertov/encoder4editing `training/ranger.py`, Ranger 20.9.4 by
Less Wright, as the coach builds it: `Ranger(encoder.parameters(), lr)` with every other argument at its default):

- gradient centralization (`use_gc=True`, `gc_conv_only=False`): every gradient with more than one dimension
  (conv and linear weights) has its mean over all dimensions but the first subtracted, in place;
- per parameter, its own step count t: Adam moments with betas (0.95, 0.999); from the step where the RAdam
  length of the approximated SMA exceeds 5 (t = 6 with these betas) the rectified update
  lr * r_t / (1 - beta1^t) * m / (sqrt(v) + eps), before it the momentum update lr / (1 - beta1^t) * m;
- Lookahead per parameter: when t is a multiple of k (6), the slow copy (the weights before the parameter's
  first update) moves alpha (0.5) of the way to the fast weights, and the fast weights are set to it.

Every per-parameter quantity lives in the optimizer's state dict, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def rectification(step: int, beta1: float, beta2: float, threshold: float) -> tuple[bool, float]:
    """(rectified?, step size without lr) of RAdam at a parameter's step t, in Python floats (double)."""
    beta2_t = beta2**step
    sma_max = 2 / (1 - beta2) - 1
    sma = sma_max - 2 * step * beta2_t / (1 - beta2_t)
    if sma > threshold:
        r = math.sqrt((1 - beta2_t) * (sma - 4) / (sma_max - 4) * (sma - 2) / sma * sma_max / (sma_max - 2))
        return True, r / (1 - beta1**step)
    return False, 1.0 / (1 - beta1**step)


def centralize_(grad: torch.Tensor) -> torch.Tensor:
    """Gradient centralization, in place: subtract the mean over every dimension but the first."""
    if grad.dim() > 1:
        grad.sub_(grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))
    return grad


class Ranger(torch.optim.Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-3, alpha: float = 0.5, k: int = 6,
                 sma_threshold: float = 5.0, betas: tuple[float, float] = (0.95, 0.999), eps: float = 1e-5,
                 weight_decay: float = 0.0, use_gc: bool = True):
        if not 0.0 <= alpha <= 1.0 or k < 1 or lr <= 0 or eps <= 0:
            raise ValueError(f"Ranger: invalid alpha={alpha}, k={k}, lr={lr} or eps={eps}")
        defaults = dict(lr=lr, alpha=alpha, k=k, sma_threshold=sma_threshold, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, use_gc=use_gc)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        if p.grad.is_sparse:
            raise RuntimeError("Ranger does not support sparse gradients")
        grad = p.grad  # centralized in place, as the official optimizer does
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            state["slow_buffer"] = p.detach().clone()
        if group["use_gc"]:
            centralize_(grad)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        rectified, step_size = rectification(step, beta1, beta2, group["sma_threshold"])
        if group["weight_decay"] != 0:
            p.add_(p, alpha=-group["weight_decay"] * group["lr"])
        if rectified:
            p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size * group["lr"])
        else:
            p.add_(exp_avg, alpha=-step_size * group["lr"])
        if step % group["k"] == 0:  # Lookahead: pull the slow weights halfway, continue from them
            slow = state["slow_buffer"]
            slow.add_(p - slow, alpha=group["alpha"])
            p.copy_(slow)
