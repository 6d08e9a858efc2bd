"""e4e and pSp behind the `Encoder` seam: one forward pass of the FPN style encoder, plus the mean latent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from stylecli.encoders.base import Capabilities, Encoded, LoadedEncoder
from stylecli.errors import UsageError
from stylecli.models.e4e import E4E, StyleEncoder, per_style_mean

CAPABILITIES = Capabilities(kind="e4e", label="e4e")


class E4EEncoder(nn.Module):
    """e4e / pSp: one forward pass of the FPN style encoder, plus the mean latent."""

    capabilities = CAPABILITIES

    def __init__(self, encoder: StyleEncoder, latent_avg: Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("latent_avg", per_style_mean(latent_avg.detach(), encoder.n_styles, latent_avg.shape[-1]))
        if encoder.kind == "psp":
            self.capabilities = replace(CAPABILITIES, label="pSp")

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

    def subnetworks(self) -> dict[str, nn.Module]:
        """One network: crop -> W+ code, the mean latent included."""
        return {"encoder": self}


def recognize(ckpt: dict[str, Any]) -> bool:
    """Any checkpoint no other kind claims is read as e4e / pSp (its loader then checks it strictly)."""
    return True


def load(path: Path | str, ckpt: dict[str, Any] | None, options: dict[str, Any]) -> LoadedEncoder:
    """An e4e / pSp checkpoint, through the loader's fast-loading cached copy (its row `rereads`: the loader reads
    the file its own way, so `ckpt` is None)."""
    from stylecli.encoders.loader import load_model

    if options:
        raise UsageError(f"{path}: an e4e / pSp checkpoint encodes in one pass: --steps and --w-encoder are for "
                         "ReStyle and HyperStyle models")
    loaded = load_model(path)
    return LoadedEncoder(E4EEncoder.from_model(loaded.model), loaded.model.decoder, loaded.opts, "e4e",
                         loaded.source, loaded.converted)
