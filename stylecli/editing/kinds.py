"""The kinds of --direction (InterFaceGAN names, ganspace:NAME|N, sefa:K, a file): each kind parses its specs,
checks them before any model is loaded, resolves them for a model, and says what `stylecli directions` lists and
which sliders the browser editor shows for it. check_spec / resolve_edit (editing/resolve.py), the catalog and
serve's sliders go through KINDS; a new kind is one class here."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecli.domains import PCA_DOMAIN, PCA_FOR_STYLES
from stylecli.editing.base import Edit, EditError
from stylecli.editing.ganspace import NAMED_EDITS, ganspace_edit, load_pca
from stylecli.editing.interfacegan import DirectionEdit, load_direction
from stylecli.editing.named import (
    GANSPACE_SOURCE,
    INTERFACEGAN,
    NamedDirection,
    domain_error,
    file_domain,
    license_of,
    named_domain,
)
from stylecli.models.stylegan2 import Generator

DIRECTION_FILES = (".pt", ".pth", ".npy")
RAW_COMPONENT = "a raw GANSpace component needs --layers (e.g. --layers 0-5)"
SEFA_DEFAULT, SEFA_RANGE = 3.0, (-10.0, 10.0)  # what `stylecli directions` lists, previews show and sliders span


@dataclass(frozen=True)
class Slider:
    """A slider of the browser editor."""

    spec: str  # what --direction takes
    label: str
    group: str
    limit: float  # the slider spans [-limit, limit]; 0 means no edit
    step: float
    key: str  # a Python identifier: the parameter's name in the `edit` API
    relative: bool = False  # GANSpace: the value shifts the face's own coordinate


def pca_name(n_styles: int) -> str:
    if n_styles not in PCA_FOR_STYLES:
        raise EditError(f"no GANSpace PCA file is known for a model with {n_styles} style layers "
                        f"({', '.join(f'{pca}: {n}' for n, pca in PCA_FOR_STYLES.items())})")
    return PCA_FOR_STYLES[n_styles]


def registry_path(name: str) -> Path:
    from stylecli.registry import weights

    return weights.resolve(name)


def check_registry_domain(spec: str, registry_name: str, domain: str | None) -> None:
    """A registry direction belongs to one domain (weights.toml `domain`); refuse it on a model of another."""
    theirs = file_domain(registry_name) if domain is not None else None
    if theirs and theirs != domain:
        raise domain_error(spec, theirs, domain)


def unknown(spec: str, names: list[str]) -> str:
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"unknown direction {spec!r}: {hint}`stylecli directions` lists them (or give a .pt/.npy file)"


def _fitting(direction: torch.Tensor, name: str, n_styles: int, generator: Generator | None) -> torch.Tensor:
    """A [rows, dim] direction that fits the model: one row or one per style layer, of the model's width."""
    dim = generator.style_dim if generator is not None else direction.shape[1]
    if direction.shape[0] not in (1, n_styles) or direction.shape[1] != dim:
        raise EditError(f"{name}: direction of shape {list(direction.shape)} does not fit this model "
                        f"({n_styles} style layers of {dim}: expected [{dim}], [1, {dim}] or [{n_styles}, {dim}])")
    return direction


def _file_direction(path: Path) -> torch.Tensor:
    """A user's direction file, refused when it holds NaN or Inf (it would render garbage)."""
    direction = load_direction(path)
    if not torch.isfinite(direction).all():
        bad = int((~torch.isfinite(direction)).sum())
        raise EditError(f"{path}: the direction holds {bad} NaN or Inf value{'s' * (bad != 1)}; it cannot edit "
                        "anything: learn it again (`stylecli directions learn`) or give another file")
    return direction


class DirectionKind:
    """One kind of --direction. `parse` says whether a spec is of this kind (its argument, else None)."""

    name = ""

    def parse(self, spec: str) -> str | None:
        raise NotImplementedError

    def check(self, spec: str, arg: str, layers: Any, domain: str | None) -> None:
        """What can be told before any model is loaded or downloaded (EditError otherwise)."""

    def resolve(self, spec: str, arg: str, n_styles: int, generator: Generator | None,
                layers: tuple[int, ...] | None, resolve_file: Any, domain: str | None) -> Edit:
        raise NotImplementedError

    def hint_names(self, pcas: list[str]) -> list[str]:
        """The names an unknown spec is compared with (`pcas`: the GANSpace files that fit the model)."""
        return []

    def named(self, registry: dict) -> list[NamedDirection]:
        """Its named directions (`stylecli directions`)."""
        return []

    def row(self, domain: str | None) -> dict | None:
        """Its catalog row for any direction of the kind (ganspace:N, sefa:K, PATH), or None."""
        return None

    def slider(self, d: NamedDirection) -> Slider:
        raise NotImplementedError


def _prefixed(spec: str, prefix: str) -> str | None:
    kind, _, arg = spec.partition(":")
    return arg if kind == prefix and arg else None


class InterFaceGAN(DirectionKind):
    name = "interfacegan"

    def parse(self, spec: str) -> str | None:
        return spec if spec in INTERFACEGAN else None

    def check(self, spec: str, arg: str, layers: Any, domain: str | None) -> None:
        check_registry_domain(spec, spec, domain)

    def resolve(self, spec, arg, n_styles, generator, layers, resolve_file, domain) -> Edit:
        check_registry_domain(spec, spec, domain)
        direction = _fitting(load_direction(resolve_file(spec)), spec, n_styles, generator)
        about, _, _, default = INTERFACEGAN[spec]
        return DirectionEdit(label=spec, default_strength=default, layers=layers, description=about,
                             direction=direction, domain=named_domain(spec, "ffhq"))

    def hint_names(self, pcas: list[str]) -> list[str]:
        return list(INTERFACEGAN)

    def named(self, registry: dict) -> list[NamedDirection]:
        return [NamedDirection(name, "interfacegan", name, named_domain(name, "ffhq", registry), None, default,
                               span, about, source, license_of(name, registry))
                for name, (about, span, source, default) in INTERFACEGAN.items()]

    def slider(self, d: NamedDirection) -> Slider:
        return Slider(d.name, d.name.replace("_", " "), "InterFaceGAN", max(abs(v) for v in d.range), 0.1, d.name)


class GanSpace(DirectionKind):
    name = "ganspace"

    def parse(self, spec: str) -> str | None:
        return _prefixed(spec, "ganspace")

    def check(self, spec: str, arg: str, layers: Any, domain: str | None) -> None:
        pcas = [p for p in NAMED_EDITS if domain is None or p == f"{domain}_pca"]
        if not pcas:
            raise EditError(f"--direction {spec}: no GANSpace PCA file is known for {domain} models; use sefa:K "
                            "(found in any generator) or a direction file made for this model")
        if arg.isdigit():
            if layers is None:
                raise EditError(f"--direction {spec}: {RAW_COMPONENT}")
        elif not any(arg in NAMED_EDITS[p] for p in pcas):
            raise EditError(unknown(spec, [f"ganspace:{e}" for p in pcas for e in NAMED_EDITS[p]]))

    def resolve(self, spec, arg, n_styles, generator, layers, resolve_file, domain) -> Edit:
        pca_file = pca_name(n_styles)
        check_registry_domain(spec, pca_file, domain)
        if arg.isdigit():
            if layers is None:
                raise EditError(f"--direction {spec}: {RAW_COMPONENT}")
            return ganspace_edit(load_pca(resolve_file(pca_file)), int(arg), layers, 0.0, f"ganspace-{arg}")
        edits = NAMED_EDITS[pca_file]
        if arg not in edits:
            raise EditError(unknown(spec, [f"ganspace:{e}" for e in edits]))
        comp, start, end, strength = edits[arg]
        chosen = layers if layers is not None else tuple(range(start, end))
        edit = ganspace_edit(load_pca(resolve_file(pca_file)), comp, chosen, strength, f"ganspace-{arg}")
        edit.domain = named_domain(pca_file, PCA_DOMAIN[pca_file])
        return edit

    def hint_names(self, pcas: list[str]) -> list[str]:
        return [*(f"ganspace:{e}" for p in pcas for e in NAMED_EDITS[p]), "ganspace:N"]

    def named(self, registry: dict) -> list[NamedDirection]:
        out = []
        for pca, presets in NAMED_EDITS.items():
            pca_domain = named_domain(pca, PCA_DOMAIN[pca], registry)
            for name, (comp, first, end, strength) in presets.items():
                s = float(strength)
                out.append(NamedDirection(
                    f"ganspace:{name}", "ganspace", pca, pca_domain, (first, end), s, (-abs(s), abs(s)),
                    f"PCA component {comp}; strength = target coordinate", f"{GANSPACE_SOURCE}; {pca}.pt",
                    license_of(pca, registry)))
        return out

    def row(self, domain: str | None) -> dict | None:
        if domain not in PCA_DOMAIN.values():
            return None
        return {"name": "ganspace:N", "kind": "ganspace", "domain": domain, "layers": "--layers required",
                "default": 0.0, "range": None, "strength": "target coordinate",
                "about": "any PCA component N (0-79)", "source": "the PCA file", "license": "as the PCA file",
                "file": None, "source_short": "PCA file", "license_short": "as the file"}

    def slider(self, d: NamedDirection) -> Slider:
        """Target coordinates: the slider shifts the face's own."""
        limit = max(abs(v) for v in d.range)
        return Slider(d.name, d.name.removeprefix("ganspace:").replace("_", " "), "GANSpace", round(limit * 1.5),
                      0.5, d.name.replace(":", "_"), relative=True)


class Sefa(DirectionKind):
    name = "sefa"

    def parse(self, spec: str) -> str | None:
        return _prefixed(spec, "sefa")

    def check(self, spec: str, arg: str, layers: Any, domain: str | None) -> None:
        if not arg.isdigit():
            raise EditError(f"--direction {spec}: expected sefa:K with K a number (0 = strongest direction)")

    def resolve(self, spec, arg, n_styles, generator, layers, resolve_file, domain) -> Edit:
        self.check(spec, arg, layers, domain)
        if generator is None:
            raise EditError("sefa directions need the generator")
        from stylecli.editing.sefa import SefaEdit, sefa_directions

        directions, _ = sefa_directions(generator, layers)
        k = int(arg)
        if k >= len(directions):
            raise EditError(f"--direction {spec}: only {len(directions)} SeFa directions exist")
        return SefaEdit(label=f"sefa-{k}", default_strength=SEFA_DEFAULT, layers=layers,
                        description=f"SeFa direction {k}",
                        direction=torch.from_numpy(directions[k]).float())

    def hint_names(self, pcas: list[str]) -> list[str]:
        return ["sefa:K"]

    def row(self, domain: str | None) -> dict | None:
        low, high = SEFA_RANGE
        return {"name": "sefa:K", "kind": "sefa", "domain": None, "layers": "all or --layers",
                "default": SEFA_DEFAULT, "range": [low, high], "strength": f"{SEFA_DEFAULT:g} ({low:g}..{high:g})",
                "about": "K-th closed-form direction of the generator (0 = strongest)",
                "source": "computed from the model", "license": "as the model", "file": None,
                "source_short": "the model", "license_short": "as the model"}

    def sliders(self, count: int) -> list[Slider]:
        """The generator's `count` strongest directions."""
        return [Slider(f"sefa:{k}", f"SeFa {k}", "SeFa", max(map(abs, SEFA_RANGE)), 0.1, f"sefa_{k}")
                for k in range(count)]


class DirectionFile(DirectionKind):
    name = "file"

    def parse(self, spec: str) -> str | None:
        path = Path(spec).expanduser()
        return spec if path.suffix in DIRECTION_FILES or path.exists() else None

    def check(self, spec: str, arg: str, layers: Any, domain: str | None) -> None:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise EditError(f"{path}: no such direction file")
        _file_direction(path)  # small: its form and values are checked now, its width against the model later

    def resolve(self, spec, arg, n_styles, generator, layers, resolve_file, domain) -> Edit:
        path = Path(spec).expanduser()
        return DirectionEdit(label=path.stem, layers=layers, description=f"direction file {path}",
                             direction=_fitting(_file_direction(path), str(path), n_styles, generator))

    def row(self, domain: str | None) -> dict | None:
        return {"name": "PATH.pt|PATH.npy", "kind": "file", "domain": None, "layers": "all or --layers",
                "default": 3.0, "range": None, "strength": "3",
                "about": "your own or a learned direction: [512], [1, 512], [n_styles, 512] or [1, n_styles, 512]",
                "source": "yours (`stylecli directions learn`)", "license": "yours", "file": None,
                "source_short": "yours", "license_short": "yours"}

    def slider(self, path: Path) -> Slider:  # type: ignore[override]
        return Slider(str(path), path.stem, "Your directions", 5.0, 0.1, f"file_{path.stem}")


INTERFACEGAN_KIND, GANSPACE_KIND, SEFA_KIND, FILE_KIND = InterFaceGAN(), GanSpace(), Sefa(), DirectionFile()
# In the order specs are tried, named directions are listed and unknown names are hinted; a file comes last.
KINDS: tuple[DirectionKind, ...] = (INTERFACEGAN_KIND, GANSPACE_KIND, SEFA_KIND, FILE_KIND)
BY_NAME = {k.name: k for k in KINDS}


def kind_of(spec: str) -> tuple[DirectionKind, str] | None:
    """The kind of a spec and its argument, or None when no kind takes it."""
    for kind in KINDS:
        arg = kind.parse(spec)
        if arg is not None:
            return kind, arg
    return None


def hint_names(pcas: list[str]) -> list[str]:
    return [name for kind in KINDS for name in kind.hint_names(pcas)]
