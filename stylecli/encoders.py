"""The encoder seam: anything that turns normalized face crops into W+ codes (and, optionally, per-photo
generator weights) plugs into the FaceEditor through the `Encoder` protocol.

- e4e and pSp (one pass): `E4EEncoder`, codes only.
- Iterative encoders (ReStyle) also return the code of every pass in `Encoded.steps`.
- Encoders or stages that adapt the generator to one photo (HyperStyle's weight offsets, PTI's tuning) fill
  `Encoded.weights`: per photo, a `GeneratorWeights` dict of replacement tensors, applied when that photo
  is rendered (`FaceEditor.synthesize(codes, weights)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from stylecli.models.e4e import E4E, StyleEncoder

# Parameter name as in the generator's state_dict (e.g. "convs.3.conv.weight") -> the tensor that replaces it
# for one photo (same shape). Parameters not named keep the shared generator's values.
GeneratorWeights = dict[str, Tensor]


@dataclass
class Encoded:
    """What an encoder returns for a batch of B crops.

    codes: W+ codes [B, n_styles, style_dim], mean latent included (what the generator consumes).
    weights: per crop, generator parameter overrides (`GeneratorWeights`) or None; None for the whole
        batch when the encoder never adapts the generator (e4e, pSp).
    steps: for iterative encoders, the codes after each pass ([B, n_styles, style_dim] each); else None.
    """

    codes: Tensor
    weights: list[GeneratorWeights | None] | None = None
    steps: list[Tensor] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @staticmethod
    def concat(parts: list[Encoded]) -> Encoded:
        """Chunks of one batch, joined in order."""
        codes = torch.cat([p.codes for p in parts])
        weights = None
        if any(p.weights is not None for p in parts):
            weights = [w for p in parts for w in (p.weights or [None] * len(p))]
        steps = None
        if parts and all(p.steps is not None for p in parts):
            steps = [torch.cat(s) for s in zip(*(p.steps for p in parts))]
        return Encoded(codes, weights, steps)


@runtime_checkable
class Encoder(Protocol):
    """x: [B, 3, 256, 256] in [-1, 1] (see convert.preprocess) on the encoder's device -> Encoded."""

    n_styles: int

    def encode(self, x: Tensor) -> Encoded: ...


class E4EEncoder(nn.Module):
    """e4e / pSp: one forward pass of the FPN style encoder, plus the mean latent."""

    def __init__(self, encoder: StyleEncoder, latent_avg: Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("latent_avg", latent_avg.detach().reshape(encoder.n_styles, -1).clone())

    @classmethod
    def from_model(cls, model: E4E) -> E4EEncoder:
        return cls(model.encoder, model.latent_avg)

    @property
    def n_styles(self) -> int:
        return self.encoder.n_styles

    @property
    def kind(self) -> str:
        return self.encoder.kind

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x) + self.latent_avg

    def encode(self, x: Tensor) -> Encoded:
        return Encoded(self(x))
