"""Turn a --direction spec into an Edit: registry names, ganspace:NAME|N, sefa:K, or a file path."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch

from stylecli.editing.base import Edit, EditError
from stylecli.editing.catalog import INTERFACEGAN, PCA_DOMAIN, domain_error, file_domain, named_domain
from stylecli.editing.ganspace import NAMED_EDITS, ganspace_edit, load_pca
from stylecli.editing.interfacegan import DirectionEdit, load_direction
from stylecli.models.stylegan2 import Generator

PCA_FOR_STYLES = {18: "ffhq_pca", 16: "cars_pca"}


def pca_name(n_styles: int) -> str:
    if n_styles not in PCA_FOR_STYLES:
        raise EditError(f"no GANSpace PCA file is known for a model with {n_styles} style layers "
                        "(ffhq_pca: 18, cars_pca: 16)")
    return PCA_FOR_STYLES[n_styles]


def known_names(n_styles: int | None = None) -> list[str]:
    names = list(INTERFACEGAN)
    for pca, edits in NAMED_EDITS.items():
        if n_styles is None or PCA_FOR_STYLES.get(n_styles) == pca:
            names += [f"ganspace:{e}" for e in edits]
    return names + ["ganspace:N", "sefa:K"]


def _registry_path(name: str):
    from stylecli import weights

    return weights.resolve(name)


def check_domain(spec: str, registry_name: str, domain: str | None) -> None:
    """A registry direction belongs to one domain (weights.toml `domain`); refuse it on a model of another."""
    theirs = file_domain(registry_name) if domain is not None else None
    if theirs and theirs != domain:
        raise domain_error(spec, theirs, domain)


def check_spec(spec: str, layers: str | tuple[int, ...] | None = None, domain: str | None = None) -> None:
    """What can be told of a direction spec before any model is loaded or downloaded (EditError otherwise): its
    form, a known name or an existing file, a registry direction's domain against the model's (`domain`, when
    known: a registry model's), and --layers for a raw GANSpace component. resolve_edit checks the rest (shapes,
    layer indices) against the model itself."""
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    pcas = [p for p in NAMED_EDITS if domain is None or p == f"{domain}_pca"]
    if kind == "ganspace" and arg:
        if not pcas:
            raise EditError(f"--direction {spec}: no GANSpace PCA file is known for {domain} models; use sefa:K "
                            "(found in any generator) or a direction file made for this model")
        if arg.isdigit():
            if layers is None:
                raise EditError(f"--direction {spec}: a raw GANSpace component needs --layers (e.g. --layers 0-5)")
        elif not any(arg in NAMED_EDITS[p] for p in pcas):
            raise EditError(_unknown(spec, [f"ganspace:{e}" for p in pcas for e in NAMED_EDITS[p]]))
    elif kind == "sefa" and arg:
        if not arg.isdigit():
            raise EditError(f"--direction {spec}: expected sefa:K with K a number (0 = strongest direction)")
    elif spec in INTERFACEGAN:
        check_domain(spec, spec, domain)
    else:
        path = Path(spec).expanduser()
        if path.suffix in (".pt", ".pth", ".npy") or path.exists():
            if not path.is_file():
                raise EditError(f"{path}: no such direction file")
            load_direction(path)  # small: its form is checked now, its width against the model later
        else:
            names = [*INTERFACEGAN, *(f"ganspace:{e}" for p in pcas for e in NAMED_EDITS[p]), "ganspace:N", "sefa:K"]
            raise EditError(_unknown(spec, names))


def resolve_edit(spec: str, n_styles: int, generator: Generator | None = None,
                 layers: tuple[int, ...] | None = None, resolve_file: Any = _registry_path,
                 domain: str | None = None) -> Edit:
    """Build the edit named by `spec` for a model with `n_styles` layers; `layers` restricts it (or, for
    ganspace:NAME, replaces the published layer range). `domain` (the model's, e.g. ffhq) refuses registry
    directions of another domain; a direction file is trusted."""
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    if kind == "ganspace" and arg:
        pca_file = pca_name(n_styles)
        check_domain(spec, pca_file, domain)
        if arg.isdigit():
            if layers is None:
                raise EditError(f"--direction {spec}: a raw GANSpace component needs --layers (e.g. --layers 0-5)")
            return ganspace_edit(load_pca(resolve_file(pca_file)), int(arg), layers, 0.0, f"ganspace-{arg}")
        edits = NAMED_EDITS[pca_file]
        if arg not in edits:
            raise EditError(_unknown(spec, [f"ganspace:{e}" for e in edits]))
        comp, start, end, strength = edits[arg]
        chosen = layers if layers is not None else tuple(range(start, end))
        edit = ganspace_edit(load_pca(resolve_file(pca_file)), comp, chosen, strength, f"ganspace-{arg}")
        edit.domain = named_domain(pca_file, PCA_DOMAIN[pca_file])
        return edit
    if kind == "sefa" and arg:
        if not arg.isdigit():
            raise EditError(f"--direction {spec}: expected sefa:K with K a number (0 = strongest direction)")
        if generator is None:
            raise EditError("sefa directions need the generator")
        import torch

        from stylecli.editing.sefa import SefaEdit, sefa_directions

        directions, _ = sefa_directions(generator, layers)
        k = int(arg)
        if k >= len(directions):
            raise EditError(f"--direction {spec}: only {len(directions)} SeFa directions exist")
        return SefaEdit(label=f"sefa-{k}", layers=layers, description=f"SeFa direction {k}",
                        direction=torch.from_numpy(directions[k]).float())
    if spec in INTERFACEGAN:
        check_domain(spec, spec, domain)
        direction = _fitting(load_direction(resolve_file(spec)), spec, n_styles, generator)
        return DirectionEdit(label=spec, layers=layers, description=INTERFACEGAN[spec][0], direction=direction,
                             domain=named_domain(spec, "ffhq"))
    path = Path(spec).expanduser()
    if path.suffix in (".pt", ".pth", ".npy") or path.exists():
        return DirectionEdit(label=path.stem, layers=layers, description=f"direction file {path}",
                             direction=_fitting(load_direction(path), str(path), n_styles, generator))
    raise EditError(_unknown(spec, known_names(n_styles)))


def _fitting(direction: torch.Tensor, name: str, n_styles: int, generator: Generator | None) -> torch.Tensor:
    """A [rows, dim] direction that fits the model: one row or one per style layer, of the model's width."""
    dim = generator.style_dim if generator is not None else direction.shape[1]
    if direction.shape[0] not in (1, n_styles) or direction.shape[1] != dim:
        raise EditError(f"{name}: direction of shape {list(direction.shape)} does not fit this model "
                        f"({n_styles} style layers of {dim}: expected [{dim}], [1, {dim}] or [{n_styles}, {dim}])")
    return direction


def _unknown(spec: str, names: list[str]) -> str:
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"unknown direction {spec!r}: {hint}`stylecli directions` lists them (or give a .pt/.npy file)"
