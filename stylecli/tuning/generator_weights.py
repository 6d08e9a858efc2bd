"""Per-photo generator weights: the seam between stages that adapt the generator (pivotal tuning) and rendering.

`GeneratorWeights` maps generator state-dict names (e.g. `convs.3.conv.weight`) to replacement tensors; names
it leaves out keep the base generator's values. Rendering swaps them in with `torch.func.functional_call`, so
the shared base generator is never modified and one generator serves every photo.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from stylecli.encoders.base import GeneratorWeights

__all__ = ["GeneratorWeights", "fingerprint", "render", "synthesis_parameters"]

MAPPING_PREFIX = "style."  # the mapping network: codes arrive as W / W+, so it never takes part


def render(
    generator: nn.Module,
    codes: Tensor,
    weights: GeneratorWeights | None = None,
    noise: Sequence[Tensor | None] | None = None,
) -> Tensor:
    """W+ codes [batch, n_latent, dim] -> images, through `weights` where given (stored noise unless `noise`)."""
    kwargs = {"input_is_latent": True, "randomize_noise": False, "noise": noise}
    if not weights:
        return generator(codes, **kwargs)
    return torch.func.functional_call(generator, weights, (codes,), kwargs, strict=False)


def synthesis_parameters(generator: nn.Module) -> dict[str, Tensor]:
    """The synthesis network's parameters by name (everything a W+ code flows through; no mapping network)."""
    return {n: p for n, p in generator.named_parameters() if not n.startswith(MAPPING_PREFIX)}


def fingerprint(module: nn.Module, sample: int | None = None) -> str:
    """sha256 over every tensor of the module's state dict (names, dtypes, shapes and values). With `sample`,
    only that many evenly spaced values of each tensor: milliseconds for a GB-sized model, and still different
    for any other training run or architecture (the names and shapes are always hashed in full)."""
    digest = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        flat = t.reshape(-1)
        if sample is not None and flat.numel() > sample:
            flat = flat[:: flat.numel() // sample][:sample]
        digest.update(flat.to("cpu").contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()
