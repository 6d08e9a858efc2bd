"""A pool of past latent codes for the discriminator (as CycleGAN's image pool).

The semantics of e4e's `LatentCodesPool` (`models/latent_codes_pool.py`, which its `training/coach.py` uses with
`--use_w_pool`; read in copies of that file, and checked against the official per-step reference): codes are
handled sample by sample; a sample of several style vectors [n, dim] first picks one of them at random; while the
pool is not full each code is stored and returned as is; once full, with probability one half a random stored
code is returned and replaced by the new one.
"""

from __future__ import annotations

from typing import Any

import torch

from stylecli.training.draws import Draws


class LatentPool:
    def __init__(self, size: int, draws: Draws, name: str):
        self.size = size
        self.draws = draws
        self.name = name  # "real" or "fake": tells the draws which pool asks
        self.codes: list[torch.Tensor] = []

    def query(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [batch, dim] or [batch, n, dim] -> [batch, dim]."""
        if self.size == 0:
            return codes
        out = []
        for w in codes.detach():
            if w.ndim == 2:
                w = w[self.draws.randint(self.name, 0, w.shape[0] - 1)]
            out.append(self._swap(w))
        return torch.stack(out)

    def _swap(self, w: torch.Tensor) -> torch.Tensor:
        if len(self.codes) < self.size:
            self.codes.append(w)
            return w
        if self.draws.uniform(self.name, 0, 1) > 0.5:
            j = self.draws.randint(self.name, 0, self.size - 1)
            stored, self.codes[j] = self.codes[j], w
            return stored.to(w)
        return w

    def state_dict(self) -> dict[str, Any]:
        return {"codes": [c.cpu() for c in self.codes]}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        self.codes = [c.to(device) if device is not None else c for c in state["codes"]]
