"""Official HyperStyle checkpoints (yuval-alaluf/hyperstyle) and the W encoder they need.

HyperStyle file: `{'state_dict': {hypernet.*, decoder.*}, 'opts', 'latent_avg', ...}`. The shared hypernetwork's
four tensors appear under `hypernet.shared_weight_hypernet.*` and again under every shared layer's head
(`hypernet.refinement_blocks.J.hypernet.*`): one tensor in the file, one here. The W encoder is not in the file:
`opts.w_encoder_checkpoint_path` names a path on the author's machine (ignored); the caller gives the W encoder's
file (`--w-encoder`, or the registry's `faces_w_encoder`), a pSp-format file whose `encoder.*` is used (its
`decoder.*` is not). `opts.device` is ignored. Everything is read with weights_only=True and loaded strictly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecli.encoders.formats.e4e import CheckpointError, latent_avg_of, split_checkpoint
from stylecli.encoders.formats.strict import assign_strict, generator_from_state, split_prefixes
from stylecli.files.checkpoints import read_checkpoint
from stylecli.models.hyperstyle import SHARED_LAYERS, HyperNetwork, HyperStyle, WEncoder, generator_layers
from stylecli.models.irse import IRSE50_FIRST_BLOCKS
from stylecli.models.resnet import RESNET34_UNITS

HYPERNET_TYPES = ("SharedWeightsHyperNetResNet",)
SHARED_PREFIX = "shared_weight_hypernet."
_TIED = re.compile(r"refinement_blocks\.(\d+)\.hypernet\.(w1|w2|b1|b2)$")
DEFAULT_STEPS = 5


@dataclass
class LoadedHyperStyle:
    model: HyperStyle
    opts: dict[str, Any]
    source: Path | None
    w_encoder_source: Path | None

    @property
    def default_steps(self) -> int:
        return int(self.opts.get("n_iters_per_batch") or DEFAULT_STEPS)


def is_hyperstyle(opts: dict[str, Any]) -> bool:
    return str(opts.get("encoder_type", "")).startswith("SharedWeightsHyperNet")


def load_hyperstyle(path: Path | str, w_encoder: Path | str | None = None) -> LoadedHyperStyle:
    """The HyperStyle model of `path`, with the W encoder of `w_encoder` (None: without one)."""
    source = Path(path)
    state, opts, latent_avg = split_checkpoint(read_checkpoint(source), str(source))
    model = hyperstyle_from_state(state, opts, latent_avg, str(source))
    w_source = None
    if w_encoder is not None:
        w_source = Path(w_encoder)
        model.w_encoder = load_w_encoder(w_source, model.n_styles)
    return LoadedHyperStyle(model, opts, source, w_source)


def _tie_shared(hyper: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Point every per-head copy of the shared hypernetwork at the shared tensor (refusing copies that differ)."""
    out = dict(hyper)
    for key, value in hyper.items():
        m = _TIED.match(key)
        if not m:
            continue
        shared_key = SHARED_PREFIX + m.group(2)
        shared = hyper.get(shared_key)
        if shared is None:
            raise CheckpointError(f"{name}: hypernet.{key} is present but hypernet.{shared_key} is missing")
        same = value is shared or (value.shape == shared.shape and value.data_ptr() == shared.data_ptr())
        if not same and not (value.shape == shared.shape and torch.equal(value, shared)):
            raise CheckpointError(f"{name}: hypernet.{key} differs from hypernet.{shared_key}; they are one shared "
                                  "tensor in HyperStyle")
        out[key] = shared
    return out


def _tuned_layers(hyper: dict[str, torch.Tensor]) -> tuple[int, ...]:
    return tuple(sorted({int(m.group(1)) for k in hyper if (m := re.match(r"refinement_blocks\.(\d+)\.", k))}))


def _check_layers_opt(opts: dict[str, Any], tuned: tuple[int, ...], name: str) -> None:
    value = opts.get("layers_to_tune")
    if not value:
        return
    try:
        listed = tuple(sorted(int(v) for v in str(value).split(",")))
    except ValueError:
        raise CheckpointError(f"{name}: opts.layers_to_tune {value!r} is not a list of layer numbers") from None
    if listed != tuned:
        raise CheckpointError(f"{name}: opts.layers_to_tune is {value} but the file has heads for layers "
                              f"{','.join(map(str, tuned))}")


def hyperstyle_from_state(state: dict[str, torch.Tensor], opts: dict[str, Any], latent_avg: Any,
                          name: str) -> HyperStyle:
    enc_type = opts.get("encoder_type", HYPERNET_TYPES[0])
    if enc_type not in HYPERNET_TYPES:
        raise CheckpointError(f"{name}: hypernetwork type {enc_type!r} is not supported "
                              f"(supported: {', '.join(HYPERNET_TYPES)})")
    parts = split_prefixes(state, ("hypernet", "decoder"), name)
    decoder = generator_from_state(parts["decoder"], name)
    hyper = _tie_shared(parts["hypernet"], name)
    tuned = _tuned_layers(hyper)
    _check_layers_opt(opts, tuned, name)
    shapes = [shape for _, shape in generator_layers(decoder)]
    if tuned and tuned[-1] >= len(shapes):
        raise CheckpointError(f"{name}: a head for generator layer {tuned[-1]}, but a {decoder.size}-px generator "
                              f"has {len(shapes)} layers")
    shared = [j for j in tuned if j in SHARED_LAYERS]
    other = [j for j in tuned if j not in SHARED_LAYERS]
    try:
        z_dim = int(hyper[SHARED_PREFIX + "w1"].shape[0])
        shared_size = int(hyper[SHARED_PREFIX + "w2"].shape[1]) // z_dim
        widths = tuple(int(hyper[f"body.{b}.conv1.weight"].shape[0])
                       for b in [sum(RESNET34_UNITS[:i]) for i in range(len(RESNET34_UNITS))])
        in_ch = int(hyper["conv1.weight"].shape[1])
        shared_inner = int(hyper[f"refinement_blocks.{shared[0]}.convs.0.weight"].shape[0]) if shared else 128
        inner = int(hyper[f"refinement_blocks.{other[0]}.convs.0.weight"].shape[0]) if other else 256
    except KeyError as exc:
        raise CheckpointError(f"{name}: not a HyperStyle checkpoint (missing tensor hypernet.{exc.args[0]})") from None
    try:
        with torch.device("meta"):
            hypernet = HyperNetwork(shapes, tuned, in_ch, widths, z_dim, shared_size, shared_inner, inner)
    except ValueError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    assign_strict(hypernet, hyper, name, "hypernet")
    avg = latent_avg_of(latent_avg, decoder.n_latent, decoder.style_dim, name)
    return HyperStyle(hypernet, decoder, None, avg).eval().requires_grad_(False)


def load_w_encoder(path: Path | str, n_styles: int) -> WEncoder:
    """The `encoder.*` of a W-encoder file (HyperStyle's pSp WEncoder), predicting `n_styles` layers."""
    source = Path(path)
    name = str(source)
    state, opts, _ = split_checkpoint(read_checkpoint(source), name)
    enc_type = opts.get("encoder_type", "WEncoder")
    if enc_type != "WEncoder":
        raise CheckpointError(f"{name}: encoder_type {enc_type!r} is not a W encoder (expected WEncoder; is this "
                              "the HyperStyle checkpoint itself? --w-encoder takes faces_w_encoder.pt)")
    enc = split_prefixes(state, ("encoder",), name, ignored=("decoder",))["encoder"]
    try:
        widths = tuple(int(enc[f"body.{b}.res_layer.1.weight"].shape[0]) for b in IRSE50_FIRST_BLOCKS)
        style_dim = int(enc["linear.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"{name}: not a W-encoder checkpoint (missing tensor encoder.{exc.args[0]})") from None
    with torch.device("meta"):
        encoder = WEncoder(n_styles, widths, style_dim)
    assign_strict(encoder, enc, name, "encoder")
    return encoder.eval().requires_grad_(False)


def save_hyperstyle(model: HyperStyle, path: Path, opts: dict[str, Any], w_encoder_path: Path | None = None) -> None:
    """Write official-format files: the HyperStyle checkpoint and (when w_encoder_path is given) the W encoder's
    pSp-format file with the same generator (for tests and conversions)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if k.startswith(("hypernet.", "decoder."))}
    avg = model.latent_avg.detach().cpu().clone()
    torch.save({"state_dict": state, "opts": dict(opts), "latent_avg": avg}, Path(path))
    if w_encoder_path is not None and model.w_encoder is not None:
        w_state = {f"encoder.{k}": v.detach().cpu() for k, v in model.w_encoder.state_dict().items()}
        w_state.update({k: v for k, v in state.items() if k.startswith("decoder.")})
        w_opts = dict(opts, encoder_type="WEncoder", input_nc=3)
        torch.save({"state_dict": w_state, "opts": w_opts, "latent_avg": avg}, Path(w_encoder_path))
