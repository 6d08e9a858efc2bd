"""Official ReStyle checkpoints (yuval-alaluf/restyle-encoder): `{'state_dict': {encoder.*, decoder.*}, 'opts',
'latent_avg', ...training state}`, read with weights_only=True and loaded strictly (the official code loads the
encoder with strict=False; here every missing or unexpected key is an error that names it). `opts.device` is
ignored: the caller picks the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecli.domains import named_domain
from stylecli.encoders.formats.e4e import CheckpointError, latent_avg_of, split_checkpoint
from stylecli.encoders.formats.strict import assign_strict, generator_from_state, split_prefixes
from stylecli.files.checkpoints import read_checkpoint
from stylecli.models.irse import IRSE50_FIRST_BLOCKS, first_blocks
from stylecli.models.resnet import RESNET34_UNITS
from stylecli.models.restyle import BackboneEncoder, ResNetBackboneEncoder, ReStyle

# encoder_type -> (backbone, progressive): the e4e variants predict a base code plus offsets.
RESTYLE_TYPES = {
    "ProgressiveBackboneEncoder": ("irse", True),
    "ResNetProgressiveBackboneEncoder": ("resnet", True),
    "BackboneEncoder": ("irse", False),
    "ResNetBackboneEncoder": ("resnet", False),
}
DEFAULT_STEPS = 5  # the official n_iters_per_batch


@dataclass
class LoadedReStyle:
    model: ReStyle
    opts: dict[str, Any]
    source: Path | None
    encoder_type: str

    @property
    def default_steps(self) -> int:
        return int(self.opts.get("n_iters_per_batch") or DEFAULT_STEPS)


def is_restyle(opts: dict[str, Any]) -> bool:
    return opts.get("encoder_type") in RESTYLE_TYPES


def load_restyle(path: Path | str) -> LoadedReStyle:
    source = Path(path)
    state, opts, latent_avg = split_checkpoint(read_checkpoint(source), str(source))
    model, enc_type = restyle_from_state(state, opts, latent_avg, str(source))
    return LoadedReStyle(model, opts, source, enc_type)


def restyle_from_state(state: dict[str, torch.Tensor], opts: dict[str, Any], latent_avg: Any,
                       name: str) -> tuple[ReStyle, str]:
    enc_type = opts.get("encoder_type")
    if enc_type not in RESTYLE_TYPES:
        raise CheckpointError(f"{name}: encoder_type {enc_type!r} is not a ReStyle encoder "
                              f"(supported: {', '.join(RESTYLE_TYPES)})")
    if named_domain(opts) == "cars":
        raise CheckpointError(f"{name}: ReStyle cars models (cropped 192x256 reconstructions) are not supported")
    parts = split_prefixes(state, ("encoder", "decoder"), name)
    decoder = generator_from_state(parts["decoder"], name)
    enc = parts["encoder"]
    backbone, progressive = RESTYLE_TYPES[enc_type]
    try:
        style_dim = int(enc["styles.0.linear.weight"].shape[0])
        if backbone == "irse":
            in_ch = int(enc["input_layer.0.weight"].shape[1])
            widths = tuple(int(enc[f"body.{b}.res_layer.1.weight"].shape[0]) for b in IRSE50_FIRST_BLOCKS)
        else:
            in_ch = int(enc["conv1.weight"].shape[1])
            widths = tuple(int(enc[f"body.{b}.conv1.weight"].shape[0]) for b in first_blocks(RESNET34_UNITS))
    except KeyError as exc:
        raise CheckpointError(f"{name}: not a {enc_type} checkpoint (missing tensor encoder.{exc.args[0]})") from None
    if in_ch != 6:
        raise CheckpointError(f"{name}: the encoder takes {in_ch} input channels; ReStyle's take 6 (photo and "
                              "current reconstruction)")
    cls = BackboneEncoder if backbone == "irse" else ResNetBackboneEncoder
    with torch.device("meta"):
        encoder = cls(decoder.n_latent, in_ch, progressive, widths, style_dim)
    assign_strict(encoder, enc, name, "encoder")
    avg = latent_avg_of(latent_avg, decoder.n_latent, decoder.style_dim, name)
    model = ReStyle(encoder, decoder, avg)
    return model.eval().requires_grad_(False), enc_type


def save_restyle(model: ReStyle, path: Path, opts: dict[str, Any]) -> None:
    """Write an official-format ReStyle checkpoint (for tests and conversions)."""
    # clone: a packed model's style heads are views of one tensor per layer; the file keeps one tensor per key
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k != "latent_avg"}
    torch.save({"state_dict": state, "opts": dict(opts), "latent_avg": model.latent_avg.detach().cpu().clone()},
               Path(path))
