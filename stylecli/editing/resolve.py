"""Turn a --direction spec into an Edit: registry names, ganspace:NAME|N, sefa:K, or a file path (each kind in
editing/kinds.py)."""

from __future__ import annotations

from typing import Any

from stylecli.domains import PCA_FOR_STYLES
from stylecli.editing.base import Edit, EditError
from stylecli.editing.ganspace import NAMED_EDITS
from stylecli.editing.kinds import hint_names, kind_of, pca_name, registry_path, unknown
from stylecli.models.stylegan2 import Generator

__all__ = ["check_spec", "known_names", "pca_name", "resolve_edit"]


def known_names(n_styles: int | None = None) -> list[str]:
    return hint_names([p for p in NAMED_EDITS if n_styles is None or PCA_FOR_STYLES.get(n_styles) == p])


def check_spec(spec: str, layers: str | tuple[int, ...] | None = None, domain: str | None = None) -> None:
    """What can be told of a direction spec before any model is loaded or downloaded (EditError otherwise): its
    form, a known name or an existing file, a registry direction's domain against the model's (`domain`, when
    known: a registry model's), and --layers for a raw GANSpace component. resolve_edit checks the rest (shapes,
    layer indices) against the model itself."""
    spec = spec.strip()
    found = kind_of(spec)
    if found is None:
        raise EditError(unknown(spec, hint_names([p for p in NAMED_EDITS if domain is None or p == f"{domain}_pca"])))
    kind, arg = found
    kind.check(spec, arg, layers, domain)


def resolve_edit(spec: str, n_styles: int, generator: Generator | None = None,
                 layers: tuple[int, ...] | None = None, resolve_file: Any = registry_path,
                 domain: str | None = None) -> Edit:
    """Build the edit named by `spec` for a model with `n_styles` layers; `layers` restricts it (or, for
    ganspace:NAME, replaces the published layer range). `domain` (the model's, e.g. ffhq) refuses registry
    directions of another domain; a direction file is trusted."""
    spec = spec.strip()
    found = kind_of(spec)
    if found is None:
        raise EditError(unknown(spec, known_names(n_styles)))
    kind, arg = found
    return kind.resolve(spec, arg, n_styles, generator, layers, resolve_file, domain)
