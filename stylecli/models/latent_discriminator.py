"""The latent discriminator of e4e: an MLP telling mapping-network codes w from encoded ones."""

from __future__ import annotations

import torch
from torch import nn


class LatentDiscriminator(nn.Module):
    """n_mlp linear layers (LeakyReLU 0.2 between them), style_dim -> 1. Keys: mlp.0, mlp.2, ... (official)."""

    def __init__(self, style_dim: int = 512, n_mlp: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(style_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.mlp(w)
