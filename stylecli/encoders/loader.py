"""Load an e4e / pSp checkpoint into a ready model, keeping a memory-mapped safetensors copy for fast restarts.

The first load of `X.pt` reads it with torch.load(weights_only=True) and writes a converted copy under
`<cache>/converted/`; later loads of the same file (same path, size and mtime) read that copy with
safetensors (memory-mapped, no unpickling at all). There is one copy per source path: the size and mtime it was
made from are in its metadata, and a changed source (a training run's `latest.pt`) gets a new copy that replaces
the stale one (written beside it, then renamed over it: two processes converting at once each write a whole
copy, the last rename wins). Files stylecli keeps in its own cache (`weights import`, URL downloads) get no
copy: they are there once already and load memory-mapped as they are.
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
from stylecli.registry.cache import cache_dir, kept_in_cache

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
    """Where the converted copy of `source` lives: one name per source path, whatever its version."""
    key = f"{Path(source).resolve()}|{CONVERTED_FORMAT}"
    return cache_dir() / "converted" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".safetensors")


def _stamp(source: Path) -> dict[str, str]:
    """What the copy records of its source's version (a changed size or mtime makes the copy stale)."""
    st = source.stat()
    return {"source": str(source.resolve()), "source_size": str(st.st_size), "source_mtime_ns": str(st.st_mtime_ns)}


def _read_meta(cached: Path) -> dict[str, str] | None:
    """The metadata of a converted copy (None: no such file, or not a safetensors file)."""
    from safetensors import safe_open

    try:
        with safe_open(str(cached), framework="np") as f:
            return f.metadata() or {}
    except Exception:  # missing, unreadable or foreign: the caller rebuilds it
        return None


def current_copy(source: Path) -> Path | None:
    """The converted copy of `source` when it was made from the file as it is now (same size and mtime), else
    None (no copy, a stale one, or one of another format)."""
    cached = converted_path(source)
    meta = _read_meta(cached) if cached.is_file() else None
    if meta is None or meta.get("format") != CONVERTED_FORMAT:
        return None
    try:
        stamp = _stamp(Path(source))
    except OSError:
        return None
    return cached if all(meta.get(k) == v for k, v in stamp.items()) else None


def load_model(path: Path | str, use_cache: bool = True) -> LoadedModel:
    """Read, check strictly and build the model of a checkpoint file (official format or our cached copy)."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint not found: {source}")
    if use_cache and kept_in_cache(source):
        use_cache = False  # an imported or downloaded file: stored once, read memory-mapped as it is
    if use_cache and (cached := current_copy(source)) is not None:
        loaded = _load_converted(cached, source)
        if loaded is not None:
            return loaded
    stamp = _stamp(source) if use_cache else None
    ckpt = read_checkpoint(source)
    state, opts, latent_avg = split_checkpoint(ckpt, str(source))
    model, config = model_from_state(state, opts, latent_avg, str(source))
    converted = None
    if stamp is not None and stamp == _stamp(source):  # (a file that changed while it was read: no copy of it)
        try:
            converted = _write_converted(model, opts, source, stamp)
        except OSError:  # a full or read-only cache only costs speed; a stale copy is of no use
            with contextlib.suppress(OSError):
                converted_path(source).unlink(missing_ok=True)
    return LoadedModel(model, config, opts, source, from_cache=False, converted=converted)


def _write_converted(model: E4E, opts: dict[str, Any], source: Path, stamp: dict[str, str]) -> Path:
    """Write the copy of `source` (replacing a stale one in one rename), then remove any other copy of the same
    source (those of earlier stylecli versions, named by size and mtime)."""
    from safetensors.torch import save_file

    from stylecli.registry.cache import converted_copies

    dest = converted_path(source)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": CONVERTED_FORMAT, "opts": json.dumps(opts, default=str), **stamp}
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    for row in converted_copies():
        if row["source"] == stamp["source"] and Path(row["path"]) != dest:
            Path(row["path"]).unlink(missing_ok=True)
    return dest


def _load_converted(cached: Path, source: Path) -> LoadedModel | None:
    """The cached copy, or None when it is unreadable (it is then rebuilt from the source)."""
    from safetensors.torch import load_file

    meta = _read_meta(cached)
    try:
        if meta is None or meta.get("format") != CONVERTED_FORMAT:
            raise ValueError("not a converted copy")
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
