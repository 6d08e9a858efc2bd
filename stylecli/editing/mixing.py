"""Style mixing: take chosen layers from another code."""

from __future__ import annotations

import torch


def mix(codes: torch.Tensor, other: torch.Tensor, layers: tuple[int, ...] | None, alpha: float = 1.0) -> torch.Tensor:
    """codes with `layers` replaced by alpha * other + (1 - alpha) * codes (all layers when None)."""
    out = codes.clone()
    index = slice(None) if layers is None else list(layers)
    out[:, index] = alpha * other.to(codes)[:, index] + (1 - alpha) * codes[:, index]
    return out
