"""Tuned generators on disk: only what changed (tuned minus base), in fp16 safetensors, tied to the base generator
by its fingerprint so that a file is never applied to another generator."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stylecli.errors import StyleCliError
from stylecli.tuning.generator_weights import GeneratorWeights, fingerprint

FORMAT = "stylecli.tuned-generator"
FORMAT_VERSION = "1"


class TunedWeightsError(StyleCliError):
    pass


def weight_difference(base: nn.Module, weights: GeneratorWeights, dtype: torch.dtype = torch.float16) -> dict:
    """tuned - base per tensor that changed, in `dtype`, on the CPU."""
    state = base.state_dict()
    out = {}
    for name, tensor in weights.items():
        if name not in state:
            raise KeyError(f"{name} is not a tensor of the base generator")
        delta = (tensor.detach().float() - state[name].float()).to("cpu", dtype).contiguous()
        if delta.any():
            out[name] = delta
    return out


def save_tuned(
    path: Path | str, base: nn.Module, weights: GeneratorWeights, metadata: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float16, base_fingerprint: str | None = None, overwrite: bool = True,
) -> Path:
    """Write the difference of `weights` to `base` atomically; `metadata` (strings) rides along.
    overwrite=False: an existing file is left alone (FileExistsError)."""
    from safetensors.torch import save_file

    from stylecli.files.atomic import atomic_path

    path = Path(path)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "base_fingerprint": base_fingerprint or fingerprint(base),
            **{k: str(v) for k, v in (metadata or {}).items()}}
    with atomic_path(path, overwrite) as tmp:
        save_file(weight_difference(base, weights, dtype), str(tmp), metadata=meta)
    return path


def read_metadata(path: Path | str) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise TunedWeightsError(f"{path}: not a readable tuned-generator file ({str(exc)[:100]}); "
                                "tune again (--tune) or delete it") from None
    if meta.get("format") != FORMAT:
        raise TunedWeightsError(f"{path}: not a stylecli tuned-generator file; tune again (--tune) or delete it")
    return meta


def code_digest(code) -> str:
    """sha256 of a latent's float32 bytes: ties a tuned file to the pivot it was tuned for."""
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(np.asarray(code, dtype=np.float32)).tobytes()).hexdigest()


def load_tuned(path: Path | str, base: nn.Module, base_fingerprint: str | None = None,
               pivot=None) -> GeneratorWeights:
    """The tuned weights (base + stored difference, in the base's dtype and device); refused when the file was
    tuned from another generator, or (given `pivot`, the latent beside it) for another latent."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    if pivot is not None and meta.get("pivot_sha256") and meta["pivot_sha256"] != code_digest(pivot):
        raise TunedWeightsError(f"{path}: tuned for another latent than the one beside it (it was replaced after "
                                "tuning); run `stylecli invert PHOTO --tune` again, or pass --no-tune")
    if meta.get("version") != FORMAT_VERSION:
        raise TunedWeightsError(f"{path}: tuned-generator format version {meta.get('version')} is not supported "
                                f"(this stylecli reads version {FORMAT_VERSION}); tune again (--tune)")
    ours = base_fingerprint or fingerprint(base)
    theirs = meta.get("base_fingerprint", "")
    if theirs != ours:
        raise TunedWeightsError(f"{path}: tuned from another generator (fingerprint {theirs[:12]}, this model's is "
                                f"{ours[:12]}); use the model it was tuned with, tune again, or pass --no-tune")
    state = base.state_dict()
    out: GeneratorWeights = {}
    for name, delta in load_file(str(path)).items():
        if name not in state or state[name].shape != delta.shape:
            raise TunedWeightsError(f"{path}: tensor {name} does not fit this generator; tune again (--tune)")
        base_t = state[name]
        out[name] = (base_t.float() + delta.to(base_t.device, torch.float32)).to(base_t.dtype)
    return out
