"""Conditional edits (--keep): move along the part of a direction orthogonal to the directions to keep.

InterFaceGAN's conditional manipulation (genforce/interfacegan utils/manipulator.py, `project_boundary`) removes
from the primal boundary its components along one or two condition boundaries and re-normalizes to unit length.
Here the kept set is first made orthonormal (Gram-Schmidt), which gives the same result for any number of kept
directions. Per-layer directions ([n_styles, dim]) are handled row by row against the kept rows of that layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stylecli.editing.base import Edit, EditError
from stylecli.editing.ganspace import GanspaceEdit
from stylecli.editing.interfacegan import DirectionEdit

EPS = 1e-6


def _rows(d: torch.Tensor) -> torch.Tensor:
    d = d.detach().double()
    return d.reshape(1, -1) if d.ndim == 1 else d


def condition(direction: torch.Tensor, kept: Sequence[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """(projected direction, cosine between the original and the projected one).

    `direction` and each kept direction are [dim], [1, dim] or [n_styles, dim]; a single row applies to every
    layer, so any per-layer input makes the result per-layer. Each row of the result is orthogonal to the
    matching rows of all kept directions and has unit length. Raises EditError when nothing is left.
    """
    rows = [_rows(direction), *(_rows(k) for k in kept)]
    n = max(r.shape[0] for r in rows)
    dim = rows[0].shape[1]
    for r in rows:
        if r.shape[0] not in (1, n) or r.shape[1] != dim:
            raise EditError(f"--keep: a direction of shape {list(r.shape)} does not match "
                            f"{list(rows[0].shape)} (expected [1, {dim}] or [{n}, {dim}])")
    primal = rows[0].expand(n, dim)
    out = primal.clone()
    for layer in range(n):
        for q in _orthonormal([r[min(layer, r.shape[0] - 1)] for r in rows[1:]]):
            out[layer] -= (out[layer] @ q) * q
    norms = out.norm(dim=1, keepdim=True)
    if bool((norms < EPS * primal.norm(dim=1, keepdim=True).clamp_min(EPS)).any()):
        raise EditError("--keep: the direction lies in the span of the kept directions; nothing is left to move "
                        "along (keep fewer directions)")
    out = out / norms
    cosine = float((primal.flatten() @ out.flatten()) / (primal.flatten().norm() * out.flatten().norm()))
    return out.float(), cosine


def _orthonormal(vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gram-Schmidt (modified, so rounding does not accumulate); vectors dependent on earlier ones are dropped."""
    basis: list[torch.Tensor] = []
    for v in vectors:
        w = v.clone()
        for q in basis:
            w -= (w @ q) * q
        norm = w.norm()
        if norm > EPS * max(float(v.norm()), EPS):
            basis.append(w / norm)
    return basis


def linear_direction(edit: Edit, role: str) -> torch.Tensor:
    """The direction vector(s) of a linear edit (InterFaceGAN, SeFa, file); GANSpace edits are refused."""
    if isinstance(edit, GanspaceEdit):
        raise EditError(f"--keep: {edit.label} is a GANSpace edit, which moves layers to a target coordinate "
                        f"rather than along a fixed direction, so it cannot be {role}; use an InterFaceGAN, SeFa or "
                        "file direction")
    direction = getattr(edit, "direction", None)
    if not isinstance(direction, torch.Tensor):
        raise EditError(f"--keep: {edit.label} has no direction vector to project")
    return direction


def conditioned_edit(edit: Edit, kept: Sequence[Edit]) -> tuple[DirectionEdit, float]:
    """`edit` restricted to move orthogonally to every kept edit's direction (unit length per row), and the
    cosine between its original and projected directions. The edit keeps its label, layers and domain."""
    projected, cosine = condition(linear_direction(edit, "conditioned"),
                                  [linear_direction(k, "kept") for k in kept])
    names = ",".join(k.label for k in kept)
    return DirectionEdit(label=edit.label, default_strength=edit.default_strength, layers=edit.layers,
                         domain=edit.domain, description=f"{edit.description} keeping {names}",
                         direction=projected), cosine


def keep_note(edit: Edit, kept: Sequence[Edit], cosine: float) -> str:
    """The record note for a conditioned edit: how much of the direction was left."""
    return (f"{edit.label} keeping {', '.join(k.label for k in kept)}: cosine {cosine:.4f} between the original and "
            "the projected direction")


def condition_edits(edits: Sequence[tuple[Edit, float | None]], kept: Sequence[Edit]
                    ) -> tuple[list[tuple[Edit, float | None]], list[str]]:
    """Every edit conditioned on the kept ones (--keep), with one note per edit; unchanged when nothing is kept."""
    if not kept:
        return list(edits), []
    out, notes = [], []
    for edit, strength in edits:
        projected, cosine = conditioned_edit(edit, kept)
        out.append((projected, strength))
        notes.append(keep_note(edit, kept, cosine))
    return out, notes
