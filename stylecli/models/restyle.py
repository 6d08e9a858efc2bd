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
HEAD_SLOPE = 0.01  # GradualStyleBlock's LeakyReLU


class StyleHeads(nn.ModuleList):
    """GradualStyleBlocks that all read one feature map, in the official layout (`I.convs.K.weight`, ...).

    Without gradients they run together, a layer of all heads at a time: the first layer as one convolution with
    every head's filters (they read the same map), the later ones one group per head, the linear layers as one
    batched product; 5 operations instead of 18 x 5 (StyleGAN's 4 strided convolutions from 16 px), with the
    same kernels as the heads one by one, so the same values (`_per_head_conv`). Each layer's weights of all heads
    live in one packed tensor and the heads' parameters are views into it (packed on first use, and again after
    a device move or a replaced parameter), so nothing is stored twice. `reference` (or gradients): each head on
    its own, as the official code runs them.
    """

    def __init__(self, n: int, in_ch: int, out_ch: int, spatial: int):
        super().__init__(GradualStyleBlock(in_ch, out_ch, spatial) for _ in range(n))
        self.reference = False
        self._packed: list[tuple[Tensor, Tensor]] = []

    def _layers(self) -> list[list[nn.Module]]:
        """Per layer (the convolutions, then the linear layer), each head's module."""
        n_convs = len(self[0].convs) // 2
        return [[head.convs[2 * k] for head in self] for k in range(n_convs)] + [[head.linear for head in self]]

    def packed(self) -> list[tuple[Tensor, Tensor]]:
        """Per layer (weights [n, ...], biases [n, out]) of all heads, the heads' parameters being views of them."""
        layers = self._layers()
        if len(self._packed) == len(layers) and all(
                _views(self._packed[k][0], [m.weight for m in layer]) and _views(self._packed[k][1],
                                                                                  [m.bias for m in layer])
                for k, layer in enumerate(layers)):
            return self._packed
        packed = []
        with torch.inference_mode(False), torch.no_grad():
            for layer in layers:
                pair = []
                for name in ("weight", "bias"):
                    params = [getattr(m, name) for m in layer]
                    stacked = torch.stack([p.detach() for p in params])
                    for m, p, view in zip(layer, params, stacked):
                        setattr(m, name, nn.Parameter(view, requires_grad=p.requires_grad))
                    pair.append(stacked)
                packed.append((pair[0], pair[1]))
        self._packed = packed
        return packed

    def forward(self, x: Tensor) -> Tensor:
        """The shared map [B, C, S, S] -> every head's vector [B, n, out]."""
        if self.reference or (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            return torch.stack([head(x) for head in self], dim=1)
        layers = self.packed()
        weight, bias = layers[0]
        n, out = weight.shape[:2]
        y = F.leaky_relu_(F.conv2d(x, weight.flatten(0, 1), bias.flatten(), 2, 1), HEAD_SLOPE)
        for weight, bias in layers[1:-1]:
            y = F.leaky_relu_(_per_head_conv(y, weight, bias), HEAD_SLOPE)
        weight, bias = layers[-1]
        linear = self[0].linear
        vectors = y.reshape(-1, n, out).transpose(0, 1)  # [n, B, out]
        codes = torch.baddbmm((bias * linear.lr_mul).unsqueeze(1), vectors, (weight * linear.scale).transpose(1, 2))
        return codes.transpose(0, 1)


def _views(packed: Tensor, params: list[Tensor]) -> bool:
    return all(p.device == packed.device and p.dtype == packed.dtype and p.data_ptr() == v.data_ptr()
               for p, v in zip(params, packed))


# PyTorch's CPU convolution runs a batch-1, 3x3, ungrouped float32 input of at most this many values with im2col
# and one matrix product (above it, and for groups or batches, with oneDNN).
_IM2COL_MAX_VALUES = 20480


def _per_head_conv(y: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Each head's strided 3x3 convolution of its own channels: y [B, n * C, S, S], weight [n, O, C, 3, 3] ->
    [B, n * O, S/2, S/2], with the kernel PyTorch would pick for one head's convolution on its own (so the
    values are those of the heads one by one): a grouped oneDNN convolution, or im2col and one matrix product
    per head."""
    n, o, c = weight.shape[:3]
    b, size = y.shape[0], y.shape[-1]
    if y.device.type != "cpu" or b > 1 or y.dtype != torch.float32 or c * size * size > _IM2COL_MAX_VALUES:
        return F.conv2d(y, weight.flatten(0, 1), bias.flatten(), 2, 1, groups=n)
    cols = F.unfold(y, 3, padding=1, stride=2).view(n, c * 9, -1)
    out = torch.stack([torch.addmm(bias[i, :, None], weight[i].view(o, c * 9), cols[i]) for i in range(n)])
    return out.view(1, n * o, (size + 1) // 2, (size + 1) // 2)


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
        self.styles = StyleHeads(n_styles, feature_ch, style_dim, FEATURE_SPATIAL)

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        vectors = self.styles(self.features(x))  # [B, n_styles, style_dim]
        if not self.progressive:
            return vectors
        base = vectors[:, :1]
        n_active = min(self.progressive_stage + 1, self.n_styles)
        codes = vectors + base
        codes[:, :1] = base
        codes[:, n_active:] = base
        return codes


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

    def set_reference(self, reference: bool = True) -> ReStyle:
        """The official formulation (each style head on its own, the generator's textbook convolutions) or the
        fast one (default)."""
        self.encoder.styles.reference = reference
        self.decoder.set_reference(reference)
        return self

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
