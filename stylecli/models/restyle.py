"""ReStyle (Alaluf et al. 2021): an encoder that refines a W+ code over several passes.

Each pass sees the photo beside the current reconstruction (6 channels) and predicts a residual that is added to
the current code (to the mean latent in the first pass, where the partner image is the mean latent's image).
The encoders read all style vectors from the backbone's final 16x16 map (restyle-encoder's
models/encoders/restyle_e4e_encoders.py and restyle_psp_encoders.py); the iteration follows its
utils/inference_utils.py `run_on_batch` and models/e4e.py `forward`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecli.models.e4e import INFERENCE_STAGE, GradualStyleBlock, per_style_mean
from stylecli.models.irse import IRSE50_UNITS, IRSE50_WIDTHS, irse_body, irse_input_layer
from stylecli.models.resnet import RESNET34_WIDTHS, ResNetStem
from stylecli.models.stylegan2 import Generator

POOLED_SIZE = 256  # the encoder's input size: reconstructions are average-pooled to it
FEATURE_SPATIAL = 16  # every style head reads the final 16x16 map


class _BackboneStyleHeads(nn.Module):
    """One GradualStyleBlock per style layer on the backbone's final map.

    progressive=True (the e4e variants): head 0 gives a base code w and head i > 0 an offset, code_i = w + d_i,
    for the first `progressive_stage` offsets (all at inference). progressive=False (the pSp variants): every
    head gives its style vector directly.
    """

    def _init_heads(self, n_styles: int, feature_ch: int, style_dim: int, progressive: bool) -> None:
        self.n_styles = n_styles
        self.progressive = progressive
        self.progressive_stage = INFERENCE_STAGE
        self.styles = nn.ModuleList(GradualStyleBlock(feature_ch, style_dim, FEATURE_SPATIAL) for _ in range(n_styles))

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        feats = self.features(x)
        if not self.progressive:
            return torch.stack([head(feats) for head in self.styles], dim=1)
        base = self.styles[0](feats)
        n_active = min(self.progressive_stage + 1, self.n_styles)
        codes = [base] + [base + self.styles[i](feats) for i in range(1, n_active)]
        codes.extend([base] * (self.n_styles - n_active))
        return torch.stack(codes, dim=1)


class BackboneEncoder(_BackboneStyleHeads):
    """IR-SE50 backbone (`input_layer`, `body`) with `in_ch` input channels (6 for ReStyle)."""

    def __init__(self, n_styles: int, in_ch: int = 6, progressive: bool = True,
                 widths: tuple[int, ...] = IRSE50_WIDTHS, style_dim: int = 512):
        super().__init__()
        self.input_layer = irse_input_layer(widths[0], in_ch)
        self.body = irse_body(widths, IRSE50_UNITS)
        self._init_heads(n_styles, widths[-1], style_dim, progressive)

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.input_layer(x))


class ResNetBackboneEncoder(ResNetStem, _BackboneStyleHeads):
    """ResNet34 backbone (`conv1`, `bn1`, `relu`, `body`), as ReStyle's ResNet encoders for non-face domains."""

    def __init__(self, n_styles: int, in_ch: int = 6, progressive: bool = True,
                 widths: tuple[int, ...] = RESNET34_WIDTHS, style_dim: int = 512):
        ResNetStem.__init__(self, in_ch, widths)
        self._init_heads(n_styles, widths[-1], style_dim, progressive)


@dataclass
class ReStyleStep:
    """One pass: the code after it and, when rendered, the generator's image pooled to 256 px."""

    codes: Tensor  # [B, n_styles, style_dim]
    pooled: Tensor | None  # [B, 3, 256, 256], unclipped


def pool(images: Tensor, size: int = POOLED_SIZE) -> Tensor:
    """The official face pool: adaptive average pooling to the encoder's input size (256x256)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.adaptive_avg_pool2d(images, (size, size))


class ReStyle(nn.Module):
    """A ReStyle encoder, the generator it inverts into and the mean latent of the first pass."""

    def __init__(self, encoder: BackboneEncoder | ResNetBackboneEncoder, decoder: Generator,
                 latent_avg: Tensor | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("latent_avg", per_style_mean(latent_avg, encoder.n_styles, decoder.style_dim))
        self._avg_image: Tensor | None = None

    @property
    def n_styles(self) -> int:
        return self.encoder.n_styles

    def synthesize(self, codes: Tensor) -> Tensor:
        """W+ codes -> full-size generator images with the stored noise."""
        return self.decoder(codes, input_is_latent=True, randomize_noise=False)

    def average_image(self, size: int = POOLED_SIZE) -> Tensor:
        """The mean latent's image pooled to 256 px [3, 256, 256]: the first pass's partner (computed once)."""
        cached = self._avg_image
        if cached is None or cached.shape[-1] != size or cached.device != self.latent_avg.device:
            cached = pool(self.synthesize(self.latent_avg[None]), size)[0]
            if not torch.is_grad_enabled():
                self._avg_image = cached
        return cached

    def _apply(self, fn, recurse=True):  # a device or dtype move drops the cached image
        self._avg_image = None
        return super()._apply(fn, recurse)

    def step(self, x: Tensor, partner: Tensor, codes: Tensor | None) -> Tensor:
        """One pass: photo x and partner image [B, 3, 256, 256] -> the refined code."""
        residual = self.encoder(torch.cat([x, partner], dim=1))
        return residual + (self.latent_avg if codes is None else codes)

    def iterate(self, x: Tensor, n_iters: int, render_last: bool = True) -> Iterator[ReStyleStep]:
        """The passes of the official inference, one at a time. Each pass but the last renders its code for the
        next one; the last renders only with render_last (skip it when the caller renders the code itself)."""
        size = x.shape[-1]
        partner = self.average_image(size).expand(x.shape[0], -1, -1, -1)
        codes = None
        for t in range(n_iters):
            codes = self.step(x, partner, codes)
            pooled = None
            if t < n_iters - 1 or render_last:
                pooled = partner = pool(self.synthesize(codes), size)
            yield ReStyleStep(codes, pooled)

    def forward(self, x: Tensor, n_iters: int = 5) -> Tensor:
        """The final code after n_iters passes (the final image is not rendered)."""
        steps = list(self.iterate(x, n_iters, render_last=False))
        return steps[-1].codes
