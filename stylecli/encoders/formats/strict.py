"""Strict, zero-copy loading of official state dicts into modules built on the meta device.

Every missing or unexpected key is named in the error; shapes are checked before anything is assigned; tensors
that the file stores once under several keys (tied) stay one tensor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from stylecli.encoders.formats.e4e import (
    CheckpointError,
    as_float32,
    check_layout,
    infer_generator,
    key_list,
)
from stylecli.files.checkpoints import first_line
from stylecli.models.stylegan2 import Generator


def split_prefixes(state: dict[str, Any], prefixes: tuple[str, ...], name: str,
                   ignored: tuple[str, ...] = ()) -> dict[str, dict[str, torch.Tensor]]:
    """{prefix: {key without 'prefix.': tensor}}; keys under `ignored` prefixes are dropped; any other key is an
    error that names it."""
    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in prefixes}
    unexpected = []
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in parts and rest:
            parts[head][rest] = value
        elif head not in ignored:
            unexpected.append(key)
    if unexpected:
        expected = ", ".join(f"{p}.*" for p in prefixes)
        raise CheckpointError(f"{name}: {len(unexpected)} unexpected tensors ({key_list(unexpected)}); "
                              f"expected only {expected}")
    return parts


def floats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Half-precision tensors as float32, converting a tensor stored under several keys once (ties survive)."""
    done: dict[int, torch.Tensor] = {}
    out = {}
    for k, v in state.items():
        if id(v) not in done:
            done[id(v)] = as_float32(v)
        out[k] = done[id(v)]
    return out


def assign_strict(module: nn.Module, state: dict[str, torch.Tensor], name: str, what: str) -> None:
    """Adopt `state`'s tensors into `module` (built on the meta device) after checking every key and shape.
    `what` is the keys' prefix in the file (named in errors)."""
    expected = module.state_dict()
    check_layout(expected, state, name, f"{what} layout", prefix=f"{what}.")
    try:
        module.load_state_dict(floats(state), strict=True, assign=True)
    except RuntimeError as exc:  # pragma: no cover - the checks above catch what load_state_dict would
        raise CheckpointError(f"{name}: {what}: {first_line(exc)}") from None


def generator_from_state(state: dict[str, torch.Tensor], name: str) -> Generator:
    """A rosinality-format generator from its tensors (keys without the `decoder.` prefix)."""
    try:
        hp = infer_generator(state, name)
    except KeyError as exc:
        raise CheckpointError(f"{name}: no StyleGAN2 generator in the file (missing tensor decoder.{exc.args[0]})") \
            from None
    with torch.device("meta"):
        gen = Generator(hp["size"], hp["style_dim"], hp["n_mlp"], channels=hp["channels"])
    assign_strict(gen, state, name, "decoder")
    return gen
