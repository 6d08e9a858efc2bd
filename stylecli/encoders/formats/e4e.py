"""Reading and writing official e4e / pSp checkpoints: `{'state_dict', 'opts', 'latent_avg'}`.

Files are read with `files.checkpoints.read_checkpoint` (`torch.load(weights_only=True)`): a checkpoint can hold
tensors and plain values only, never code. The architecture is inferred from `opts` and the tensor shapes, then
loaded strictly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stylecli.files.atomic import atomic_path
from stylecli.files.checkpoints import CheckpointError
from stylecli.models.e4e import E4E, EncoderKind, build_e4e, per_style_mean
from stylecli.models.irse import IRSE50_FIRST_BLOCKS, IRSE50_WIDTHS

ENCODER_TYPES: dict[str, EncoderKind] = {"Encoder4Editing": "e4e", "GradualStyleEncoder": "psp"}
KIND_TO_TYPE = {v: k for k, v in ENCODER_TYPES.items()}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the modules of a checkpoint."""

    size: int
    kind: EncoderKind
    style_dim: int = 512
    widths: tuple[int, ...] = IRSE50_WIDTHS
    channels: dict[int, int] = field(default_factory=dict)
    n_mlp: int = 8

    @property
    def n_styles(self) -> int:
        return 2 * int(math.log2(self.size)) - 2

    def build(self) -> E4E:
        return build_e4e(self.size, self.kind, self.style_dim, self.widths, self.channels or None, self.n_mlp)


def _indices(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def infer_config(state: dict[str, torch.Tensor], opts: dict[str, Any], name: str = "checkpoint") -> ModelConfig:
    """Derive the architecture from opts (encoder type, size) and the tensor shapes (widths)."""
    enc_type = opts.get("encoder_type", "Encoder4Editing")
    if enc_type not in ENCODER_TYPES:
        known = ", ".join(ENCODER_TYPES)
        raise CheckpointError(f"{name}: encoder_type {enc_type!r} is not supported (supported: {known})")
    try:
        n_styles = len(_indices(state, r"encoder\.styles\.(\d+)\."))
        if n_styles == 0:
            raise KeyError("encoder.styles.0")
        gen = infer_generator({k[8:]: v for k, v in state.items() if k.startswith("decoder.")}, name)
        size = gen["size"]
        opt_size = opts.get("stylegan_size") or opts.get("output_size")
        if opt_size and int(opt_size) != size:
            raise CheckpointError(f"{name}: opts say a {opt_size}-px generator but the decoder tensors are {size}-px")
        if n_styles != 2 * int(math.log2(size)) - 2:
            raise CheckpointError(
                f"{name}: the encoder predicts {n_styles} styles but a {size}-px generator needs "
                f"{2 * int(math.log2(size)) - 2}"
            )
        widths = tuple(int(state[f"encoder.body.{b}.res_layer.1.weight"].shape[0]) for b in IRSE50_FIRST_BLOCKS)
    except KeyError as exc:
        raise CheckpointError(f"{name}: not an e4e/pSp checkpoint (missing tensor {exc.args[0]})") from None
    return ModelConfig(size, ENCODER_TYPES[enc_type], gen["style_dim"], widths, gen["channels"], gen["n_mlp"])


def infer_generator(state: dict[str, torch.Tensor], name: str = "generator") -> dict[str, Any]:
    """Generator hyper-parameters (size, style_dim, channels, n_mlp) from rosinality-format tensors."""
    n_noise = len(_indices(state, r"noises\.noise_(\d+)$"))
    if n_noise == 0:
        raise KeyError("decoder.noises.noise_0")
    size = 2 ** ((n_noise - 1) // 2 + 2)
    channels = {4: int(state["input.input"].shape[1])}
    for j, res in enumerate(range(3, int(math.log2(size)) + 1)):
        channels[2**res] = int(state[f"convs.{2 * j}.conv.weight"].shape[1])
    return {
        "size": size,
        "style_dim": int(state["style.1.weight"].shape[0]),
        "channels": channels,
        "n_mlp": len(_indices(state, r"style\.(\d+)\.weight")),
    }


def split_checkpoint(ckpt: dict[str, Any], name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], Any]:
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not state:
        keys = ", ".join(map(str, list(ckpt)[:5]))
        hint = " (a generator-only file? use it with --generator)" if "g_ema" in ckpt else ""
        raise CheckpointError(f"{name}: no 'state_dict' in the file (top-level keys: {keys}){hint}")
    opts = ckpt.get("opts") or {}
    if not isinstance(opts, dict):
        opts = {}
    return state, opts, ckpt.get("latent_avg")


def model_from_state(
    state: dict[str, torch.Tensor], opts: dict[str, Any], latent_avg: torch.Tensor | None, name: str
) -> tuple[E4E, ModelConfig]:
    """Build the modules on the meta device, check every key and shape, then adopt the tensors (no copy)."""
    config = infer_config(state, opts, name)
    with torch.device("meta"):
        model = config.build()
    full = {k: as_float32(v) for k, v in state.items()}
    full["latent_avg"] = _latent_avg(latent_avg, opts, config, name)
    check_layout(model.state_dict(), full, name, f"{config.kind} architecture")
    model.load_state_dict(full, strict=True, assign=True)
    return model.eval().requires_grad_(False), config


def as_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() and t.dtype != torch.float32 else t


def _latent_avg(value: Any, opts: dict[str, Any], config: ModelConfig, name: str) -> torch.Tensor:
    n, d = config.n_styles, config.style_dim
    if not opts.get("start_from_latent_avg", True):
        return torch.zeros(n, d)
    return latent_avg_of(value, n, d, name, missing="but opts.start_from_latent_avg is set")


def latent_avg_of(value: Any, n_styles: int, style_dim: int, name: str,
                  missing: str = "(the first pass starts from it)") -> torch.Tensor:
    """A file's mean latent as [n_styles, style_dim] float32 (files store [n, d] or one [d] row); `missing` ends
    the message when the file has none."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{name}: 'latent_avg' is missing {missing}")
    if value.numel() not in (style_dim, n_styles * style_dim):
        raise CheckpointError(f"{name}: 'latent_avg' has shape {list(value.shape)}, expected [{n_styles}, "
                              f"{style_dim}] or [{style_dim}]")
    return per_style_mean(value.float(), n_styles, style_dim)


def official_state(model: E4E) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's tensors under official keys (`encoder.*`, `decoder.*`) and its latent_avg."""
    state = {k: v for k, v in model.state_dict().items() if k != "latent_avg"}
    return state, model.latent_avg.detach().clone()


def default_opts(config: ModelConfig, **overrides: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "encoder_type": KIND_TO_TYPE[config.kind],
        "stylegan_size": config.size,
        "start_from_latent_avg": True,
        "dataset_type": "ffhq_encode",
    }
    opts.update(overrides)
    return opts


def save_checkpoint(model: E4E, path: Path, opts: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write an official-format checkpoint (loadable by the official code), atomically."""
    state, latent_avg = official_state(model)
    ckpt = {"state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()}, "opts": dict(opts),
            "latent_avg": latent_avg.cpu()}
    if extra:
        ckpt.update(extra)
    with atomic_path(Path(path)) as tmp:
        torch.save(ckpt, tmp)


SHOWN_KEYS = 3  # keys named in a layout error before "and N more"


def key_list(keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def check_layout(expected: dict[str, Any], state: dict[str, Any], name: str, layout: str, prefix: str = "") -> None:
    """CheckpointError naming every missing / unexpected key (a few of each) and the first wrong shape: strict
    loading, said before any tensor is adopted. `prefix` is the keys' prefix in the file."""
    missing = [f"{prefix}{k}" for k in expected if k not in state]
    unexpected = [f"{prefix}{k}" for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"{len(keys)} {what} tensors ({key_list(keys)})"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise CheckpointError(f"{name}: does not match the {layout}: " + "; ".join(parts))
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(f"{name}: tensor {prefix}{key} has shape {list(state[key].shape)}, "
                                  f"expected {list(ref.shape)}")
