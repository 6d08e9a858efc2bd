"""SeFa: closed-form semantic directions from the generator's style-modulation weights alone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from stylecli.editing.base import Edit
from stylecli.models.stylegan2 import Generator
from stylecli.registry.cache import cache_dir


def modulation_weights(generator: Generator, layers: tuple[int, ...] | None) -> np.ndarray:
    """Stack the modulation weights of the convolutions driven by the chosen W+ layers: [sum channels, dim].

    W+ layer 0 drives conv1, layer k >= 1 drives convs[k - 1] (the RGB layers are left out, as in SeFa).
    """
    convs = [generator.conv1.conv, *[c.conv for c in generator.convs]]
    chosen = range(len(convs)) if layers is None else [k for k in layers if k < len(convs)]
    return np.concatenate([convs[k].modulation.weight.detach().cpu().double().numpy() for k in chosen])


def sefa_directions(generator: Generator, layers: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors of A^T A (A: modulation weights, each row scaled to unit norm), largest eigenvalue first.

    Returns (directions [dim, dim] as rows, eigenvalues). Cached on disk by the weights' hash.
    """
    a = modulation_weights(generator, layers)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    key = hashlib.sha256(a.tobytes()).hexdigest()[:32]
    path = cache_dir() / "sefa" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return cached["directions"], cached["eigenvalues"]
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1]
    directions, values = vectors[:, order].T.copy(), values[order]
    try:
        from stylecli.files.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, directions=directions, eigenvalues=values)
    except OSError:
        pass
    return directions, values


@dataclass
class SefaEdit(Edit):
    direction: torch.Tensor = None  # type: ignore[assignment]  # [dim], unit norm

    def delta(self, codes: torch.Tensor, strength: float) -> torch.Tensor:
        return strength * self.direction.to(codes).view(1, 1, -1) * self.layer_mask(codes)
