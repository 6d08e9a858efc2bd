"""The LPIPS distance (the `lpips` package's network) as a plain module: two image batches -> one value each."""

from __future__ import annotations

import torch
from torch import nn


class LPIPSDistance(nn.Module):
    """Wraps an `lpips.LPIPS` network; images in [-1, 1]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a, b, normalize=False).flatten()
