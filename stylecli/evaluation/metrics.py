"""Distortion metrics on inversions and the paper's editability metric, LEC.

Images are compared at 256x256 in [-1, 1] (the generator output average-pooled, as the official code does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from stylecli.models.arcface import ArcFace
from stylecli.models.e4e import E4E

METRICS = ("l2", "lpips", "msssim", "id", "lec")
__all__ = ["METRICS", "ArcFace", "Stat", "identity_similarity", "l2", "lec_distances", "msssim", "pool256",
           "trim_outliers"]


def pool256(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images, (256, 256)) if images.shape[-1] != 256 else images


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (images in [-1, 1])."""
    return (a - b).pow(2).flatten(1).mean(dim=1)


def msssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image (the pytorch-msssim package), on images mapped to [0, 1]."""
    from pytorch_msssim import ms_ssim

    x, y = ((a.clamp(-1, 1) + 1) / 2).float(), ((b.clamp(-1, 1) + 1) / 2).float()
    return ms_ssim(x, y, data_range=1.0, size_average=False)


def identity_similarity(arcface: ArcFace, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of ArcFace embeddings per image pair (1 = same identity)."""
    return (arcface.embed_face(a) * arcface.embed_face(b)).sum(dim=1)


def trim_outliers(values: Sequence[float]) -> np.ndarray:
    """Keep values within the 1st and 99th percentiles (lower / higher interpolation, as the paper's code)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return arr
    lo = np.percentile(arr, 1, method="lower")
    hi = np.percentile(arr, 99, method="higher")
    return arr[(arr >= lo) & (arr <= hi)]


def lec_distances(
    model: E4E, images: torch.Tensor, edit: Callable[[torch.Tensor], torch.Tensor],
    inverse: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Latent editing consistency per image: encode, edit, generate (pooled to 256), encode again, undo the
    edit, and take the L2 (Frobenius) norm of the difference to the first code."""
    codes = model.encode(images)
    edited = pool256(model.synthesize(edit(codes)))
    back = inverse(model.encode(edited))
    return (codes - back).flatten(1).norm(dim=1)


@dataclass
class Stat:
    values: list[float] = field(default_factory=list)

    def summary(self, trimmed: bool = False) -> dict[str, float | int]:
        arr = trim_outliers(self.values) if trimmed else np.asarray(self.values, dtype=np.float64)
        if arr.size == 0:
            return {"mean": math.nan, "std": math.nan, "n": 0}
        return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}
