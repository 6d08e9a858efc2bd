"""Pure-PyTorch versions of StyleGAN2's two custom CUDA ops (FIR resampling and fused bias + leaky ReLU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_GAIN = math.sqrt(2.0)


def fir_kernel(taps: list[float]) -> torch.Tensor:
    """The 2-D separable kernel outer(taps, taps), normalized to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), convolve with `kernel`, keep every `down`-th pixel.

    The filter is a true convolution (kernel flipped), applied to every channel on its own.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype).expand(c, 1, *kernel.shape)
    if p0 == p1 and p0 >= 0:  # the convolution pads by itself: no padded copy
        x = F.conv2d(x, weight, padding=p0, groups=c)
    else:
        x = F.conv2d(F.pad(x, [p0, p1, p0, p1]), weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2), with the bias broadcast along dimension 1."""
    shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), slope) * LRELU_GAIN

