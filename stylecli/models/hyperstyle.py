"""HyperStyle (Alaluf et al. 2022): a W code from a W encoder, then per-photo offsets of the generator's weights.

A hypernetwork (ResNet34 on the photo beside the current reconstruction, 6 channels) predicts, per tuned
generator convolution, an offset d of its weight; over several passes the offsets are summed and each tuned
convolution uses weight * (1 + d). The code stays the W encoder's. Semantics follow yuval-alaluf/hyperstyle:
models/hyperstyle.py (forward, W inversion), models/hypernetworks/hypernetwork.py
(SharedWeightsHyperNetResNet), refinement_blocks.py, shared_weights_hypernet.py, models/encoders/w_encoder.py
and utils/inference_utils.py (`run_inversion`).

Every head is affine in the vector it computes last (the shared hypernetwork in its 512-d code, the per-layer
heads in their pooled features), so the summed offsets of T passes are the heads applied to the summed vectors
(plus T - 1 more biases): `HyperStyleState` keeps a photo's offsets as one vector per tuned layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecli.models.e4e import per_style_mean
from stylecli.models.irse import IRSE50_UNITS, IRSE50_WIDTHS, irse_body, irse_input_layer
from stylecli.models.resnet import RESNET34_WIDTHS, ResNetStem
from stylecli.models.restyle import pool
from stylecli.models.stylegan2 import EqualLinear, Generator, standard_normal

# Generator layers whose offsets come from the one shared hypernetwork (the 512-channel 3x3 convolutions).
SHARED_LAYERS = (0, 2, 3, 5, 6, 8, 9, 11, 12)
# The official default: every non-toRGB convolution of a 1024 px generator.
DEFAULT_LAYERS_TO_TUNE = (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24)
HEAD_SPATIAL = 16
# Columns of the shared hypernetwork's 0.5 GB first matrix per product on CPUs (SharedWeightsHypernet.forward).
COLUMN_BLOCK = 2048


def generator_layers(decoder: Generator) -> list[tuple[str, tuple[int, int, int]]]:
    """Per hypernetwork output, in the generator's order (conv1, to_rgb1, then per resolution the upsampling
    conv, the conv and the toRGB): the weight's parameter name and (kernel, in, out)."""
    names = ["conv1.conv.weight", "to_rgb1.conv.weight"]
    for r in range(len(decoder.to_rgbs)):
        names += [f"convs.{2 * r}.conv.weight", f"convs.{2 * r + 1}.conv.weight", f"to_rgbs.{r}.conv.weight"]
    params = dict(decoder.named_parameters())
    layers = []
    for name in names:
        _, out_ch, in_ch, k, _ = params[name].shape
        layers.append((name, (k, in_ch, out_ch)))
    return layers


def _fmod_init(*shape: int) -> Tensor:
    t = standard_normal(*shape)
    return t if t.is_meta else torch.fmod(t / 40, 2)


class WEncoder(nn.Module):
    """IR-SE50, global average pool, one equalized linear layer: one w, repeated for every style layer."""

    def __init__(self, n_styles: int, widths: tuple[int, ...] = IRSE50_WIDTHS, style_dim: int = 512):
        super().__init__()
        self.n_styles = n_styles
        self.input_layer = irse_input_layer(widths[0], 3)
        self.body = irse_body(widths, IRSE50_UNITS)
        self.linear = EqualLinear(widths[-1], style_dim)

    def forward(self, x: Tensor) -> Tensor:
        w = self.linear(self.body(self.input_layer(x)).mean(dim=(2, 3)))
        return w[:, None].expand(-1, self.n_styles, -1)


class SharedWeightsHypernet(nn.Module):
    """A 512-d code -> a full [out, in, f, f] weight offset through two affine maps (z @ w2 + b2, reshaped to
    [in, z], then @ w1 + b1), shared by several generator layers."""

    def __init__(self, z_dim: int = 512, in_size: int = 512, out_size: int = 512, f_size: int = 3):
        super().__init__()
        self.z_dim, self.in_size, self.out_size, self.f_size = z_dim, in_size, out_size, f_size
        self.w1 = nn.Parameter(_fmod_init(z_dim, out_size * f_size * f_size))
        self.b1 = nn.Parameter(_fmod_init(out_size * f_size * f_size))
        self.w2 = nn.Parameter(_fmod_init(z_dim, in_size * z_dim))
        self.b2 = nn.Parameter(_fmod_init(in_size * z_dim))

    def forward(self, z: Tensor, n_terms: int = 1, blocked: bool = False) -> Tensor:
        """z [B, z_dim] -> offsets [B, out, in, f, f]. With n_terms = T and z the sum of T codes, the sum of the
        T offsets (each affine map's bias counted T times). blocked: the first product on CPUs in blocks of
        columns, the same values twice as fast for the few rows of one photo's nine shared layers (MKL's single
        product of 9 rows with the 512 x 262144 matrix runs at a tenth of its usual rate here)."""
        if blocked and z.device.type == "cpu" and 1 < z.shape[0] <= 16:
            h = z.new_empty(z.shape[0], self.w2.shape[1])
            for start in range(0, h.shape[1], COLUMN_BLOCK):
                torch.mm(z, self.w2[:, start : start + COLUMN_BLOCK], out=h[:, start : start + COLUMN_BLOCK])
            h += self.b2 * n_terms
        else:
            h = torch.matmul(z, self.w2) + self.b2 * n_terms
        h = h.view(z.shape[0], self.in_size, self.z_dim)
        kernel = torch.matmul(h, self.w1) + self.b1 * n_terms
        return kernel.view(z.shape[0], self.out_size, self.in_size, self.f_size, self.f_size)


def _strided_convs(widths: list[int], first_stride: int) -> nn.Sequential:
    """3x3 convs with LeakyReLU(0.01), each but the first (stride `first_stride`) halving the map."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Conv2d(a, b, 3, first_stride if i == 0 else 2, 1), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers)


class HyperRefinementBlock(nn.Module):
    """Head of a shared layer: convs to a 1x1 map, an equalized linear layer, then the shared hypernetwork."""

    def __init__(self, hypernet: SharedWeightsHypernet, n_channels: int = 512, inner_c: int = 128,
                 spatial: int = HEAD_SPATIAL):
        super().__init__()
        out_c = hypernet.z_dim
        n = int(math.log2(spatial))
        self.convs = _strided_convs([n_channels] + [inner_c] * n + [out_c], first_stride=1)
        self.linear = EqualLinear(out_c, out_c)
        self.hypernet = hypernet
        self.out_c = out_c

    def code(self, features: Tensor) -> Tensor:
        """The vector the shared hypernetwork reads [B, z_dim]."""
        return self.linear(self.convs(features).reshape(-1, self.out_c))

    def forward(self, features: Tensor) -> Tensor:
        return self.hypernet(self.code(features))


class RefinementBlock(nn.Module):
    """Head of a non-shared layer: convs, then a 1x1 conv (after average pooling for 3x3 layers) to one offset
    per (out, in) pair; a 3x3 layer's offset is the same over its 9 taps (kept as [.., 1, 1], broadcast)."""

    def __init__(self, shape: tuple[int, int, int], n_channels: int = 512, inner_c: int = 256, out_c: int = 512,
                 spatial: int = HEAD_SPATIAL):
        super().__init__()
        self.kernel_size, self.in_channels, self.out_channels = shape
        n_convs = int(math.log2(spatial)) - (1 if self.kernel_size == 3 else 0)
        self.convs = _strided_convs([n_channels] + [inner_c] * (n_convs - 1) + [out_c], first_stride=2)
        head = nn.Conv2d(out_c, self.in_channels * self.out_channels, 1)
        self.output = nn.Sequential(nn.AdaptiveAvgPool2d(1), head) if self.kernel_size == 3 else nn.Sequential(head)

    def code(self, features: Tensor) -> Tensor:
        """The pooled vector the final 1x1 conv reads [B, out_c]."""
        return self.convs(features).mean(dim=(2, 3))

    def offsets_from(self, code: Tensor, n_terms: int = 1) -> Tensor:
        """code [B, out_c] -> offsets [B, out, in, k, k] (or [B, out, in, 1, 1] for 3x3 layers)."""
        conv = self.output[-1]
        flat = F.linear(code, conv.weight.flatten(1), conv.bias * n_terms)
        return flat.view(-1, self.out_channels, self.in_channels, 1, 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.offsets_from(self.code(features))


class HyperNetwork(ResNetStem):
    """SharedWeightsHyperNetResNet: a ResNet34 on 6 channels, then one head per tuned generator layer
    (`refinement_blocks.j`, None for untuned layers); the shared layers' heads hold one SharedWeightsHypernet."""

    def __init__(self, layer_shapes: list[tuple[int, int, int]], layers_to_tune: tuple[int, ...] | None = None,
                 in_ch: int = 6, widths: tuple[int, ...] = RESNET34_WIDTHS, z_dim: int = 512,
                 shared_size: int = 512, shared_inner: int = 128, inner: int = 256):
        super().__init__(in_ch, widths)
        n_outputs = len(layer_shapes)
        tuned = tuple(range(n_outputs)) if not layers_to_tune else tuple(layers_to_tune)
        self.layers_to_tune = tuned
        self.shared_weight_hypernet = SharedWeightsHypernet(z_dim, shared_size, shared_size)
        blocks: list[nn.Module | None] = []
        for j, shape in enumerate(layer_shapes):
            if j not in tuned:
                blocks.append(None)
            elif j in SHARED_LAYERS:
                if shape != (3, shared_size, shared_size):
                    raise ValueError(f"shared layer {j} has shape {shape}, the shared hypernetwork makes "
                                     f"(3, {shared_size}, {shared_size})")
                blocks.append(HyperRefinementBlock(self.shared_weight_hypernet, widths[-1], shared_inner))
            else:
                blocks.append(RefinementBlock(shape, widths[-1], inner, z_dim))
        self.refinement_blocks = nn.ModuleList(blocks)

    @property
    def n_outputs(self) -> int:
        return len(self.refinement_blocks)

    def head_codes(self, x: Tensor) -> list[Tensor | None]:
        """x [B, 6, 256, 256] -> per generator layer the vector its head's affine end reads (None: untuned)."""
        feats = self.features(x)
        return [None if block is None else block.code(feats) for block in self.refinement_blocks]

    def offsets_from(self, codes: list[Tensor | None], n_terms: int = 1) -> list[Tensor | None]:
        """Head vectors (or sums of n_terms of them) -> per layer the (summed) weight offsets. The shared layers
        go through the shared hypernetwork in one batch, reading its 0.5 GB of weights once."""
        out: list[Tensor | None] = [None] * len(codes)
        shared = [j for j, c in enumerate(codes) if c is not None and isinstance(self.refinement_blocks[j],
                                                                                  HyperRefinementBlock)]
        if shared:
            batch = codes[shared[0]].shape[0]
            kernels = self.shared_weight_hypernet(torch.cat([codes[j] for j in shared]), n_terms, blocked=True)
            for i, j in enumerate(shared):
                out[j] = kernels[i * batch : (i + 1) * batch]
        for j, c in enumerate(codes):
            if c is not None and out[j] is None:
                out[j] = self.refinement_blocks[j].offsets_from(c, n_terms)
        return out

    def forward(self, x: Tensor) -> list[Tensor | None]:
        return self.offsets_from(self.head_codes(x))


@dataclass
class HyperStyleState:
    """A photo's (or a batch's) offsets in compact form: per tuned layer the sum of its head vectors over the
    passes, and the number of passes. `HyperStyle.offsets_of(state)` turns it back into offsets."""

    codes: list[Tensor | None]  # per generator layer [B, 512] or None
    n_terms: int

    def __add__(self, other: HyperStyleState) -> HyperStyleState:
        codes = [None if a is None else a + b for a, b in zip(self.codes, other.codes)]
        return HyperStyleState(codes, self.n_terms + other.n_terms)

    def select(self, i: int) -> HyperStyleState:
        return HyperStyleState([None if c is None else c[i : i + 1] for c in self.codes], self.n_terms)


@dataclass
class HyperStyleStep:
    """One pass: the summed offsets so far (per layer, None: untuned), their compact form, and (when rendered)
    the generator's image with them, pooled to 256 px."""

    offsets: list[Tensor | None]
    state: HyperStyleState
    pooled: Tensor | None


class HyperStyle(nn.Module):
    """W encoder, hypernetwork, generator and mean latent. `w_encoder` may be None when only codes already
    encoded are rendered with stored offsets."""

    def __init__(self, hypernet: HyperNetwork, decoder: Generator, w_encoder: WEncoder | None = None,
                 latent_avg: Tensor | None = None):
        super().__init__()
        self.hypernet = hypernet
        self.decoder = decoder
        self.w_encoder = w_encoder
        n_styles = decoder.n_latent
        self.register_buffer("latent_avg", per_style_mean(latent_avg, n_styles, decoder.style_dim))
        self.layer_names = [name for name, _ in generator_layers(decoder)]

    @property
    def n_styles(self) -> int:
        return self.decoder.n_latent

    def w_codes(self, x: Tensor) -> Tensor:
        """Normalized photos [B, 3, 256, 256] -> W codes [B, n_styles, style_dim], mean latent included."""
        if self.w_encoder is None:
            raise RuntimeError("this HyperStyle model has no W encoder")
        return self.w_encoder(x) + self.latent_avg

    def generator_weights(self, offsets: list[Tensor | None], index: int = 0) -> dict[str, Tensor]:
        """Sample `index`'s replacement generator weights: weight * (1 + offset) for each tuned layer."""
        params = dict(self.decoder.named_parameters())
        return {name: params[name] * (1 + d[index : index + 1])
                for name, d in zip(self.layer_names, offsets) if d is not None}

    def synthesize(self, codes: Tensor, offsets: list[Tensor | None] | None = None) -> Tensor:
        """W+ codes -> full-size images with the stored noise, each sample with its own offsets."""
        if offsets is None:
            return self.decoder(codes, input_is_latent=True, randomize_noise=False)
        from torch.func import functional_call

        images = []
        for i in range(codes.shape[0]):
            weights = self.generator_weights(offsets, i)
            images.append(functional_call(self.decoder, weights, (codes[i : i + 1],),
                                          {"input_is_latent": True, "randomize_noise": False}))
        return torch.cat(images)

    def offsets_of(self, state: HyperStyleState) -> list[Tensor | None]:
        return self.hypernet.offsets_from(state.codes, state.n_terms)

    def iterate(self, x: Tensor, codes: Tensor, n_iters: int, render_last: bool = True,
                partner: Tensor | None = None) -> Iterator[HyperStyleStep]:
        """The official passes for photos x and their W codes; partner: the codes' pooled image, rendered here
        when not given. Each pass but the last renders for the next; the last only with render_last."""
        if partner is None:
            partner = pool(self.synthesize(codes), x.shape[-1])
        offsets: list[Tensor | None] | None = None
        state: HyperStyleState | None = None
        for t in range(n_iters):
            head = HyperStyleState(self.hypernet.head_codes(torch.cat([x, partner], dim=1)), 1)
            new = self.hypernet.offsets_from(head.codes)
            offsets = new if offsets is None else [None if a is None else a + b for a, b in zip(offsets, new)]
            state = head if state is None else state + head
            pooled = None
            if t < n_iters - 1 or render_last:
                pooled = partner = pool(self.synthesize(codes, offsets), x.shape[-1])
            yield HyperStyleStep(offsets, state, pooled)

    def forward(self, x: Tensor, n_iters: int = 5) -> tuple[Tensor, list[Tensor | None]]:
        """Photos -> (W codes, summed offsets) after n_iters passes (the final image is not rendered)."""
        codes = self.w_codes(x)
        steps = list(self.iterate(x, codes, n_iters, render_last=False))
        return codes, steps[-1].offsets
