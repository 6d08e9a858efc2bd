"""The random draws of one training run, behind one small interface.

The trainer asks a `Draws` object for everything random in the recipe's discriminator step: the z vectors fed to
the mapping network (the "real" codes) and the two latent pools' decisions. `RandomDraws` is the default: its own
seeded torch generator for z, and one Python `random.Random` stream shared by both pools (as the official coach
shares Python's global stream between its two `LatentCodesPool`s). Its state is saved in every checkpoint, so a
resumed run draws exactly what the uninterrupted run would have drawn.

Any object with the same methods can be passed to `Trainer(..., draws=...)`: for example one that replays the
draws an official run logged, so that both runs see the same numbers step for step.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import torch


class Draws(Protocol):
    def latent_z(self, batch: int, dim: int, device: torch.device) -> torch.Tensor:
        """z [batch, dim] for the mapping network (one call per discriminator step or validation batch)."""

    def randint(self, pool: str, low: int, high: int) -> int:
        """An integer in [low, high], both included (Python's random.randint), for pool "real" or "fake"."""

    def uniform(self, pool: str, low: float, high: float) -> float:
        """A float in [low, high] (Python's random.uniform), for pool "real" or "fake"."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RandomDraws:
    """Seeded draws: z from a torch.Generator (CPU, moved to the device), pool decisions from random.Random."""

    def __init__(self, seed: int = 0):
        self.z_generator = torch.Generator().manual_seed(seed)
        self.pool_random = random.Random(seed)

    def latent_z(self, batch: int, dim: int, device: torch.device) -> torch.Tensor:
        return torch.randn(batch, dim, generator=self.z_generator).to(device)

    def randint(self, pool: str, low: int, high: int) -> int:
        return self.pool_random.randint(low, high)

    def uniform(self, pool: str, low: float, high: float) -> float:
        return self.pool_random.uniform(low, high)

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.pool_random.getstate()
        return {"z": self.z_generator.get_state(), "pool": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.z_generator.set_state(state["z"])
        version, internal, gauss = state["pool"]
        self.pool_random.setstate((version, tuple(internal), gauss))
