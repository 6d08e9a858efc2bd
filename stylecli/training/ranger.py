"""Ranger: RAdam wrapped in Lookahead (k=6, alpha=0.5), the optimizer of the e4e recipe.

RAdam is PyTorch's own; Lookahead keeps a slow copy of the weights and pulls the fast ones towards it every k
steps. Its state lives in the optimizer's state dict, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Ranger(torch.optim.RAdam):
    def __init__(self, params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.95, 0.999),
                 eps: float = 1e-5, weight_decay: float = 0.0, k: int = 6, alpha: float = 0.5):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        for group in self.param_groups:
            group.setdefault("lookahead_k", k)
            group.setdefault("lookahead_alpha", alpha)
            group.setdefault("lookahead_count", 0)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        # The slow weights start from the weights before the first update (added after RAdam's own state).
        first = {p: p.detach().clone() for group in self.param_groups for p in group["params"]
                 if p.grad is not None and "slow" not in self.state[p]}
        loss = super().step(closure)
        for p, start in first.items():
            self.state[p]["slow"] = start
        for group in self.param_groups:
            group["lookahead_count"] += 1
            sync = group["lookahead_count"] % group["lookahead_k"] == 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if sync:
                    state["slow"].add_(p - state["slow"], alpha=group["lookahead_alpha"])
                    p.copy_(state["slow"])
        return loss
