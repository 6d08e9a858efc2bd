"""Linear directions (InterFaceGAN files, user files): code + strength * direction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylecli.editing.base import Edit, EditError


@dataclass
class DirectionEdit(Edit):
    """A direction of shape [1, dim] (the same for every layer) or [n_styles, dim] (one row per layer)."""

    direction: torch.Tensor = None  # type: ignore[assignment]

    def delta(self, codes: torch.Tensor, strength: float) -> torch.Tensor:
        d = self.direction.to(codes.device, codes.dtype)
        if d.shape[0] not in (1, codes.shape[1]) or d.shape[1] != codes.shape[2]:
            raise EditError(
                f"{self.label}: direction of shape {list(d.shape)} does not fit a model with {codes.shape[1]} "
                f"style layers of {codes.shape[2]} (expected [1, {codes.shape[2]}] or "
                f"[{codes.shape[1]}, {codes.shape[2]}])"
            )
        return strength * d.unsqueeze(0) * self.layer_mask(codes)


def load_direction(path: Path) -> torch.Tensor:
    """A direction tensor from .pt (loaded safely, onto the CPU) or .npy, as [rows, dim]."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            arr = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        else:
            arr = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EditError(f"{path}: no such direction file") from None
    except Exception:
        what = "a NumPy array file" if path.suffix == ".npy" else "a tensor file (torch.save, loaded safely)"
        raise EditError(f"{path}: not a direction file: it does not read as {what}; give a [512] or "
                        "[n_styles, 512] direction, e.g. one `stylecli directions learn` wrote") from None
    if not isinstance(arr, torch.Tensor):
        raise EditError(f"{path}: expected a tensor, found a {type(arr).__name__}")
    arr = arr.detach().float()
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise EditError(f"{path}: direction of shape {list(arr.shape)}; expected [512], [1, 512], "
                        "[n_styles, 512] or [1, n_styles, 512]")
    return arr
