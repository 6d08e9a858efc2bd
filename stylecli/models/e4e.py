"""pSp / e4e style encoders (FPN over an IR-SE50 backbone) and the encoder + generator pair."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecli.models.irse import IRSE50_UNITS, IRSE50_WIDTHS, irse_body, irse_input_layer
from stylecli.models.stylegan2 import EqualLinear, Generator

EncoderKind = Literal["e4e", "psp"]
# Official stage value meaning "every offset active" (it exceeds any style count).
INFERENCE_STAGE = 18
COARSE_END, MIDDLE_END = 3, 7  # styles [0, 3) read c3, [3, 7) read p2, [7, n) read p1
# Indices of the body blocks whose outputs feed the FPN (IR-SE50: end of stages 2, 3 and 4).
C1_BLOCK, C2_BLOCK, C3_BLOCK = 6, 20, 23


class GradualStyleBlock(nn.Module):
    """Strided 3x3 convs with LeakyReLU(0.01) from `spatial` px down to 1 px, then an equalized linear layer."""

    def __init__(self, in_ch: int, out_ch: int, spatial: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch)
        self.out_ch = out_ch

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_ch))


def upsample_add(x: Tensor, y: Tensor) -> Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class StyleEncoder(nn.Module):
    """Encodes a 256x256 image in [-1, 1] into `n_styles` style vectors (without the mean latent).

    kind="psp": one independent vector per style layer (pSp's GradualStyleEncoder).
    kind="e4e": a base code from style block 0 plus an offset from block i for each active layer
    (Encoder4Editing); `progressive_stage` is how many offsets are active (training), default all.
    """

    def __init__(
        self,
        n_styles: int,
        kind: EncoderKind = "e4e",
        widths: tuple[int, ...] = IRSE50_WIDTHS,
        style_dim: int = 512,
    ):
        super().__init__()
        if kind not in ("e4e", "psp"):
            raise ValueError(f"unknown encoder kind {kind!r}")
        self.kind = kind
        self.n_styles = n_styles
        self.input_layer = irse_input_layer(widths[0])
        self.body = irse_body(widths, IRSE50_UNITS)
        fpn = widths[3]
        self.styles = nn.ModuleList(
            GradualStyleBlock(fpn, style_dim, 16 if i < COARSE_END else 32 if i < MIDDLE_END else 64)
            for i in range(n_styles)
        )
        self.latlayer1 = nn.Conv2d(widths[2], fpn, 1)
        self.latlayer2 = nn.Conv2d(widths[1], fpn, 1)
        self.progressive_stage = INFERENCE_STAGE

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.input_layer(x)
        taps = []
        for i, block in enumerate(self.body):
            x = block(x)
            if i in (C1_BLOCK, C2_BLOCK, C3_BLOCK):
                taps.append(x)
        return taps[0], taps[1], taps[2]

    def forward(self, x: Tensor) -> Tensor:
        c1, c2, c3 = self.features(x)
        if self.kind == "psp":
            p2 = upsample_add(c3, self.latlayer1(c2))
            p1 = upsample_add(p2, self.latlayer2(c1))
            feats = [c3 if i < COARSE_END else p2 if i < MIDDLE_END else p1 for i in range(self.n_styles)]
            return torch.stack([block(f) for block, f in zip(self.styles, feats)], dim=1)

        base = self.styles[0](c3)
        codes = [base]
        features, p2 = c3, None
        n_active = min(self.progressive_stage + 1, self.n_styles)
        for i in range(1, n_active):
            if i == COARSE_END:
                p2 = features = upsample_add(c3, self.latlayer1(c2))
            elif i == MIDDLE_END:
                features = upsample_add(p2, self.latlayer2(c1))
            codes.append(base + self.styles[i](features))
        codes.extend([base] * (self.n_styles - n_active))
        return torch.stack(codes, dim=1)


def per_style_mean(latent_avg: Tensor | None, n_styles: int, style_dim: int) -> Tensor:
    """The mean latent as one row per style layer ([dim], [1, dim] or [n_styles, dim] given; zeros when None)."""
    if latent_avg is None:
        return torch.zeros(n_styles, style_dim)
    return latent_avg.reshape(-1, style_dim).expand(n_styles, -1).clone()


class E4E(nn.Module):
    """An encoder, the StyleGAN2 generator it inverts into, and the mean latent added to every code."""

    def __init__(self, encoder: StyleEncoder, decoder: Generator, latent_avg: Tensor | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("latent_avg", per_style_mean(latent_avg, encoder.n_styles, decoder.style_dim))

    @property
    def n_styles(self) -> int:
        return self.encoder.n_styles

    def encode(self, images: Tensor) -> Tensor:
        """Normalized images [batch, 3, 256, 256] -> W+ codes [batch, n_styles, style_dim], mean latent included."""
        return self.encoder(images) + self.latent_avg

    def synthesize(self, codes: Tensor) -> Tensor:
        """W+ codes -> generator images [batch, 3, size, size] with the stored (deterministic) noise."""
        return self.decoder(codes, input_is_latent=True, randomize_noise=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        codes = self.encode(images)
        return codes, self.synthesize(codes)


def build_e4e(
    size: int = 1024,
    kind: EncoderKind = "e4e",
    style_dim: int = 512,
    widths: tuple[int, ...] = IRSE50_WIDTHS,
    channels: dict[int, int] | None = None,
    n_mlp: int = 8,
) -> E4E:
    """The encoder + generator pair for a generator of `size` px (2*log2(size) - 2 style layers)."""
    decoder = Generator(size, style_dim, n_mlp, channels=channels)
    encoder = StyleEncoder(decoder.n_latent, kind, widths, style_dim)
    return E4E(encoder, decoder)
