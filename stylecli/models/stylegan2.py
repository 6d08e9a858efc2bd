"""StyleGAN2 generator with the parameter layout of the widely used rosinality PyTorch port.

Every module name, parameter name and shape matches that layout, so the `g_ema` weights of
`stylegan2-ffhq-config-f.pt` and the `decoder.*` weights inside e4e / pSp checkpoints load strictly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylecli.models.ops import LRELU_GAIN, conv_transpose3x3_s2, fir_kernel, fused_leaky_relu, upfirdn2d

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
# On CPUs, upsampling convolutions on maps this large (and larger) run as four per-parity convolutions.
PHASE_CONV_MIN_PIXELS = 128 * 128


def standard_normal(*shape: int) -> torch.Tensor:
    """torch.randn(*shape), the same numbers; on the meta device (building a model to load weights into) an
    empty tensor, because the first meta-device random op costs over a second of lazy imports."""
    t = torch.empty(*shape)
    return t if t.is_meta else t.normal_()


def default_channels(size: int, channel_multiplier: int = 2, channel_max: int = 512) -> dict[int, int]:
    """Feature channels per resolution (4 .. size): 512 up to 32 px, then halving with each doubling."""
    return {
        2**i: min(channel_max, 16384 * channel_multiplier // 2**i) for i in range(2, int(math.log2(size)) + 1)
    }


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights stored at unit scale, scaled at run time."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False
    ):
        super().__init__()
        weight = standard_normal(out_dim, in_dim)
        self.weight = nn.Parameter(weight if weight.is_meta else weight.div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass filter applied after a strided transposed convolution."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(list(BLUR_TAPS)) * gain)
        self.pad = pad

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, bias=bias)


class Upsample(nn.Module):
    """2x FIR upsampling (used on the RGB skip path)."""

    factor = 2

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(list(BLUR_TAPS)) * self.factor**2)
        p = len(BLUR_TAPS) - self.factor
        self.pad = ((p + 1) // 2 + self.factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style and (optionally) demodulated."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True, upsample: bool = False
    ):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(standard_normal(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        self.reference = False  # True: the grouped-convolution formulation (kept as an oracle)
        if upsample:
            # A stride-2 transposed conv grows 2H+k-2 pixels; the blur trims back to 2H.
            p = (len(BLUR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights [batch, out, in, k, k]."""
        s = self.modulation(style).view(-1, 1, self.in_ch, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.reference:
            return self.forward_grouped(x, style)
        return self.forward_fast(x, style)

    def forward_grouped(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The textbook formulation: per-sample weights, one grouped convolution over the whole batch."""
        batch, _, h, w = x.shape
        k = self.kernel_size
        weight = self.modulated_weight(style)
        x = x.reshape(1, batch * self.in_ch, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * self.in_ch, self.out_ch, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
            out = self.blur(out.reshape(batch, self.out_ch, *out.shape[-2:]))
            return out
        out = F.conv2d(x, weight.reshape(batch * self.out_ch, self.in_ch, k, k), padding=self.padding, groups=batch)
        return out.reshape(batch, self.out_ch, *out.shape[-2:])

    def forward_fast(
        self, x: torch.Tensor, style: torch.Tensor, gain: float = 1.0, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Same math, faster: batch 1 is a plain convolution with the modulated weight; larger batches scale
        the inputs by the style, share one convolution, and demodulate the outputs (no grouped conv).

        For inference, the result can come out multiplied by `gain` and with a per-channel `bias` added (both
        folded into the convolution, which saves passes over large activations).
        """
        batch = x.shape[0]
        if batch == 1:
            out = self._conv(x, self._single_weight(style, gain), bias)
        else:
            s = self.modulation(style)  # [B, in]
            weight = self.weight[0] * self.scale
            out = self._conv(x * s.view(batch, -1, 1, 1), weight)
            if self.demodulate:
                demod = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=[2, 3]).t() + 1e-8)  # [B, out]
                out = out * (demod * gain).view(batch, -1, 1, 1)
            elif gain != 1.0:
                out = out * gain
            if bias is not None:
                out = out + bias.view(1, -1, 1, 1)
        return out

    def _single_weight(self, style: torch.Tensor, gain: float) -> torch.Tensor:
        """The modulated (and demodulated) weight [out, in, k, k] of one sample, times `gain`, in few passes."""
        s = self.modulation(style).view(1, self.in_ch, 1, 1) * self.scale
        weight = self.weight[0] * s
        if self.demodulate:
            norm = torch.linalg.vector_norm(weight, dim=(1, 2, 3))
            return weight * (torch.rsqrt(norm.square() + 1e-8) * gain).view(-1, 1, 1, 1)
        return weight * gain if gain != 1.0 else weight

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if not self.upsample:
            return F.conv2d(x, weight, bias, padding=self.padding)
        h, w = x.shape[-2:]
        if x.device.type == "cpu" and self.kernel_size == 3 and h * w >= PHASE_CONV_MIN_PIXELS:
            out = conv_transpose3x3_s2(x, weight)
        else:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        return self.blur(out, bias)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(standard_normal(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.conv.reference or torch.is_grad_enabled():
            return self.activate(self.noise(self.conv(x, style), noise))
        # Inference: lrelu(v) * g == lrelu(g * v) for g > 0, so the gain and the bias ride along with the
        # convolution; the noise is added in place on its fresh output.
        out = self.conv.forward_fast(x, style, LRELU_GAIN, self.activate.bias * LRELU_GAIN)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, out.shape[2], out.shape[3]).normal_()
        out.add_(noise * (self.noise.weight * LRELU_GAIN))
        return F.leaky_relu_(out, 0.2)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), added to the upsampled RGB of the previous resolution."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.conv.reference or torch.is_grad_enabled():
            out = self.conv(x, style) + self.bias
        else:
            out = self.conv.forward_fast(x, style, bias=self.bias.view(-1))
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Noises(nn.Module):
    """Holds the fixed per-layer noise maps `noise_0 .. noise_{n-1}` as buffers."""

    def __init__(self, size: int):
        super().__init__()
        n_layers = (int(math.log2(size)) - 2) * 2 + 1
        for i in range(n_layers):
            res = 2 ** ((i + 5) // 2)
            self.register_buffer(f"noise_{i}", standard_normal(1, 1, res, res))

    def maps(self) -> list[torch.Tensor]:
        return [getattr(self, f"noise_{i}") for i in range(len(self._buffers))]


class Generator(nn.Module):
    """Mapping network (PixelNorm + n_mlp equalized linear layers) and synthesis network.

    `forward` takes W+ codes [batch, n_latent, style_dim] (or W codes [batch, style_dim]) and returns
    images in roughly [-1, 1]. Stored noise maps are used unless `randomize_noise=True`.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        lr_mlp: float = 0.01,
        channels: dict[int, int] | None = None,
    ):
        super().__init__()
        if size < 4 or size & (size - 1):
            raise ValueError(f"generator size must be a power of two >= 4, got {size}")
        self.size = size
        self.style_dim = style_dim
        self.channels = channels or default_channels(size, channel_multiplier)
        self.reference = False
        self.log_size = int(math.log2(size))
        self.n_latent = self.log_size * 2 - 2
        self.num_layers = (self.log_size - 2) * 2 + 1

        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)]
        )
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = Noises(size)
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, style_dim, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, style_dim))
            self.to_rgbs.append(ToRGB(out_ch, style_dim))
            in_ch = out_ch

    def set_reference(self, reference: bool = True) -> Generator:
        """Switch between the fast path (default) and the textbook formulation kept as a test oracle."""
        self.reference = reference
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.reference = reference
        return self

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z [batch, style_dim] -> w [batch, style_dim]."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.style_dim, generator=generator).to(self.input.input.device)
        return self.map(z).mean(0, keepdim=True)

    def forward(
        self,
        codes: torch.Tensor,
        input_is_latent: bool = True,
        randomize_noise: bool = False,
        noise: Sequence[torch.Tensor | None] | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if not input_is_latent:
            codes = self.map(codes)
        if truncation < 1.0:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (see mean_latent)")
            codes = truncation_latent + truncation * (codes - truncation_latent)
        if codes.ndim == 2:
            codes = codes.unsqueeze(1).expand(-1, self.n_latent, -1)
        if codes.shape[1] != self.n_latent:
            raise ValueError(f"expected {self.n_latent} style vectors per code, got {codes.shape[1]}")
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.noises.maps()
        if codes.shape[0] > 1 and codes.device.type == "cpu" and not self.reference:
            # On CPUs a batch runs fastest one sample at a time (plain convolutions, activations in cache).
            return torch.cat([self.synthesize(c[None], noise) for c in codes])
        return self.synthesize(codes, noise)

    def synthesize(self, codes: torch.Tensor, noise: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The synthesis network on W+ codes [batch, n_latent, style_dim] with the given noise maps."""
        out = self.input(codes.shape[0])
        if not self.reference:  # channels-last activations: much faster convolutions and blurs on CPUs
            out = out.contiguous(memory_format=torch.channels_last)
        out = self.conv1(out, codes[:, 0], noise[0])
        skip = self.to_rgb1(out, codes[:, 1])
        i = 1
        for up_conv, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            out = up_conv(out, codes[:, i], noise[i])
            out = conv(out, codes[:, i + 1], noise[i + 1])
            skip = to_rgb(out, codes[:, i + 2], skip)
            i += 2
        return skip
