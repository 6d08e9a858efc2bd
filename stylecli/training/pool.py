"""A pool of past latent codes for the discriminator (as the image pool of CycleGAN): half of the time a
query swaps a fresh code for a stored one."""

from __future__ import annotations

import torch


class LatentPool:
    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.codes: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, codes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return codes
        out = []
        for w in codes.detach():
            if len(self.codes) < self.size:
                self.codes.append(w.clone())
                out.append(w)
            elif torch.rand((), generator=self.generator) < 0.5:
                j = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.codes[j].to(w))
                self.codes[j] = w.clone()
            else:
                out.append(w)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"codes": [c.cpu() for c in self.codes], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.codes = list(state["codes"])
        self.generator.set_state(state["generator"])
