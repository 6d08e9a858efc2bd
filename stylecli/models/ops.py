"""Pure-PyTorch versions of StyleGAN2's two custom CUDA ops (FIR resampling and fused bias + leaky ReLU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_GAIN = math.sqrt(2.0)


def fir_kernel(taps: list[float]) -> torch.Tensor:
    """The 2-D separable kernel outer(taps, taps), normalized to sum 1 (always computed on the CPU: building
    a model on the meta device must not run meta arithmetic, whose first use costs a second of imports)."""
    k = torch.tensor(taps, dtype=torch.float32, device="cpu")
    k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), convolve with `kernel`, keep every `down`-th pixel.

    The filter is a true convolution (kernel flipped), applied to every channel on its own; `bias` (one value
    per channel) is added by the same convolution.
    """
    n, c, h, w = x.shape
    p0, p1 = pad
    k = kernel.shape[0]
    if up > 1 and down == 1 and 0 <= p0 <= k - 1 and p1 <= k - up:
        # A strided transposed convolution inserts the zeros itself (no 4x larger copy); crop to the window.
        weight = kernel.to(dtype=x.dtype).expand(c, 1, *kernel.shape)
        x = F.conv_transpose2d(x, weight, bias, stride=up, groups=c)
        start = k - 1 - p0
        return x[:, :, start : start + h * up + p0 + p1 - k + 1, start : start + w * up + p0 + p1 - k + 1]
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype).expand(c, 1, *kernel.shape)
    if p0 == p1 and p0 >= 0:  # the convolution pads by itself: no padded copy
        x = F.conv2d(x, weight, bias, padding=p0, groups=c)
    else:
        x = F.conv2d(F.pad(x, [p0, p1, p0, p1]), weight, bias, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2), with the bias broadcast along dimension 1."""
    shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), slope) * LRELU_GAIN


def conv_transpose3x3_s2(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`conv_transpose2d(x, weight.transpose(0, 1), stride=2)` for a 3x3 `weight` [out, in, 3, 3], computed as
    four ordinary convolutions, one per output pixel parity (2x2, 2x1, 1x2 and 1x1 taps: 9 in all, no zeros).

    The result is interleaved into a channels-last tensor of [batch, out, 2H+1, 2W+1]. On CPUs this beats the
    library's transposed convolution for wide maps with few channels (the generator's high resolutions).
    """
    batch, _, h, w = x.shape
    out = torch.empty(
        batch, weight.shape[0], 2 * h + 1, 2 * w + 1, dtype=x.dtype, device=x.device, memory_format=torch.channels_last
    )
    # Output row 2m reads input rows m-1 (tap 2) and m (tap 0); row 2m+1 reads row m (tap 1).
    taps = {0: [2, 0], 1: [1]}
    for a in (0, 1):
        for b in (0, 1):
            kernel = weight[:, :, taps[a]][:, :, :, taps[b]]
            out[:, :, a::2, b::2] = F.conv2d(x, kernel, padding=(1 - a, 1 - b))
    return out
