"""Load an e4e / pSp checkpoint into a ready model, keeping a memory-mapped safetensors copy for fast restarts.

The first load of `X.pt` reads it with torch.load(weights_only=True) and writes a converted copy under
`<cache>/converted/`; later loads of the same file (same path, size and mtime) read that copy with
safetensors (memory-mapped, no unpickling at all).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecli.encoders.formats.e4e import (
    CheckpointError,
    ModelConfig,
    as_float32,
    infer_generator,
    model_from_state,
    split_checkpoint,
)
from stylecli.files.atomic import atomic_path
from stylecli.files.checkpoints import first_line, read_checkpoint
from stylecli.models.e4e import E4E
from stylecli.models.stylegan2 import Generator
from stylecli.registry.cache import cache_dir

CONVERTED_FORMAT = "stylecli-e4e-1"


@dataclass
class LoadedModel:
    model: E4E
    config: ModelConfig
    opts: dict[str, Any]
    source: Path
    from_cache: bool
    converted: Path | None = None  # a fast-loading copy written by this load (stylecli cache clean removes it)


def converted_path(source: Path) -> Path:
    st = source.stat()
    key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{CONVERTED_FORMAT}"
    return cache_dir() / "converted" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".safetensors")


def load_model(path: Path | str, use_cache: bool = True) -> LoadedModel:
    """Read, check strictly and build the model of a checkpoint file (official format or our cached copy)."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint not found: {source}")
    cached = converted_path(source) if use_cache else None
    if cached is not None and cached.is_file():
        loaded = _load_converted(cached, source)
        if loaded is not None:
            return loaded
    ckpt = read_checkpoint(source)
    state, opts, latent_avg = split_checkpoint(ckpt, str(source))
    model, config = model_from_state(state, opts, latent_avg, str(source))
    if cached is not None:
        with contextlib.suppress(OSError):  # a full or read-only cache only costs speed
            _write_converted(model, opts, cached, source)
    converted = cached if cached is not None and cached.is_file() else None
    return LoadedModel(model, config, opts, source, from_cache=False, converted=converted)


def _write_converted(model: E4E, opts: dict[str, Any], dest: Path, source: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": CONVERTED_FORMAT, "opts": json.dumps(opts, default=str), "source": str(source.resolve())}
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_converted(cached: Path, source: Path) -> LoadedModel | None:
    """The cached copy, or None when it is unreadable (it is then rebuilt from the source)."""
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(cached), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != CONVERTED_FORMAT:
            return None
        opts = json.loads(meta.get("opts", "{}"))
        tensors = load_file(str(cached))
    except Exception:  # unreadable or foreign file: drop it, rebuild from the source
        cached.unlink(missing_ok=True)
        return None
    latent_avg = tensors.pop("latent_avg", None)
    model, config = model_from_state(tensors, {**opts, "start_from_latent_avg": True}, latent_avg, str(source))
    return LoadedModel(model, config, opts, source, from_cache=True)


def load_generator(path: Path | str) -> Generator:
    """A generator from a StyleGAN2 file (`g_ema`, rosinality format) or from a checkpoint's `decoder.*`."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if isinstance(ckpt.get("g_ema"), dict):
        state = ckpt["g_ema"]
    elif isinstance(ckpt.get("state_dict"), dict):
        state = {k[len("decoder.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("decoder.")}
    else:
        raise CheckpointError(f"{path}: no generator in the file (expected 'g_ema' or a checkpoint 'state_dict')")
    try:
        hp = infer_generator(state, str(path))
    except KeyError as exc:
        raise CheckpointError(f"{path}: not a StyleGAN2 generator (missing tensor {exc.args[0]})") from None
    with torch.device("meta"):
        gen = Generator(hp["size"], hp["style_dim"], hp["n_mlp"], channels=hp["channels"])
    try:
        gen.load_state_dict({k: as_float32(v) for k, v in state.items()}, strict=True, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: does not match the StyleGAN2 layout ({first_line(exc)})") from None
    return gen.eval().requires_grad_(False)
