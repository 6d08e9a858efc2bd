"""Pixels <-> model tensors, exactly as the official code converts them."""

from __future__ import annotations

import numpy as np
import torch

ENCODER_INPUT_SIZE = 256


def preprocess(pixels: np.ndarray, size: int = ENCODER_INPUT_SIZE) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, size, size] in [-1, 1]: bilinear resize (Pillow), then (x - 0.5) / 0.5."""
    if pixels.shape[:2] != (size, size):
        from PIL import Image

        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR))
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    return x.sub_(0.5).div_(0.5)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output [B, 3, H, W] -> uint8 [B, H, W, 3] as the official code converts it:
    clamp to [-1, 1], (x + 1) / 2 * 255, truncate."""
    arr = images.detach().float().cpu().clamp(-1, 1).permute(0, 2, 3, 1).numpy()
    return ((arr + 1) / 2 * 255).astype(np.uint8)
