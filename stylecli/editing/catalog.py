"""The named directions: what each one is, which generator (domain) it was found for, its layers, a suggested
strength range, where it comes from and under which license.

Domains come from the weights registry (the `domain` of the file a direction reads), so a private registry
decides for its own files; a direction whose file has no domain is trusted, like a user's own file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stylecli.editing.base import EditError
from stylecli.editing.ganspace import NAMED_EDITS

E4E_SOURCE = "omertov/encoder4editing@99ea505"
NADA_SOURCE = "rinongal/StyleGAN-nada@dc8406a"
GANSPACE_SOURCE = "harskish/ganspace notebooks/figure_teaser.ipynb"
SHORT_SOURCE = {E4E_SOURCE: "e4e", NADA_SOURCE: "StyleGAN-nada", GANSPACE_SOURCE: "GANSpace"}

# name -> (registry file, meaning, suggested range, source). The StyleGAN-nada ranges follow the distances that
# repository's ZSSGAN/generate_videos.py suggests (gender 3, hair_length 4, beard 2).
INTERFACEGAN: dict[str, tuple[str, tuple[float, float], str]] = {
    "age": ("InterFaceGAN age: + older, - younger", (-5.0, 5.0), E4E_SOURCE),
    "smile": ("InterFaceGAN smile: + smiling, - neutral", (-3.0, 3.0), E4E_SOURCE),
    "pose": ("InterFaceGAN head pose (yaw), one row per layer", (-3.0, 3.0), E4E_SOURCE),
    "gender": ("InterFaceGAN gender", (-3.0, 3.0), NADA_SOURCE),
    "beard": ("InterFaceGAN beard", (-2.0, 2.0), NADA_SOURCE),
    "hair_length": ("InterFaceGAN hair length", (-4.0, 4.0), NADA_SOURCE),
}
# The PCA file each GANSpace preset table reads, and the domain of that file when the registry names none.
PCA_DOMAIN = {"ffhq_pca": "ffhq", "cars_pca": "cars"}
KNOWN_DOMAINS = ("ffhq", "cars", "horse", "church")


@dataclass(frozen=True)
class NamedDirection:
    name: str  # as given to --direction: "age", "ganspace:bald"
    kind: str  # interfacegan | ganspace
    file: str  # the registry entry it reads
    domain: str | None  # the generator it was found for; None: unknown (trusted)
    layers: tuple[int, int] | None  # [first, end) for GANSpace presets; None: every layer
    default: float  # strength when --strength is not given
    range: tuple[float, float]  # suggested strengths (GANSpace: target coordinates)
    about: str
    source: str
    license: str

    @property
    def layers_text(self) -> str:
        if self.layers is None:
            return "all"
        first, end = self.layers
        return f"{first}-{end - 1}" if end - first > 1 else str(first)


def _registry() -> dict:
    from stylecli import weights

    try:
        return weights.load_registry()
    except (OSError, ValueError):
        return {}


def file_domain(name: str, registry: dict | None = None) -> str | None:
    """The domain the registry gives a direction file (None when it gives none or lacks the entry)."""
    registry = _registry() if registry is None else registry
    entry = registry.get(name)
    return (getattr(entry, "domain", "") or None) if entry is not None else None


def named_domain(file: str, published: str, registry: dict | None = None) -> str | None:
    """The registry's domain for a named direction's file; the published one when the registry lacks the entry."""
    registry = _registry() if registry is None else registry
    return file_domain(file, registry) if file in registry else published


def named_directions(domain: str | None = None, registry: dict | None = None) -> list[NamedDirection]:
    """Every named direction (only those of `domain` when given), InterFaceGAN first, then GANSpace presets."""
    registry = _registry() if registry is None else registry
    out: list[NamedDirection] = []
    for name, (about, span, source) in INTERFACEGAN.items():
        out.append(NamedDirection(name, "interfacegan", name, named_domain(name, "ffhq", registry), None, 3.0, span,
                                  about, source, _license(name, registry)))
    for pca, presets in NAMED_EDITS.items():
        pca_domain = named_domain(pca, PCA_DOMAIN[pca], registry)
        for name, (comp, first, end, strength) in presets.items():
            s = float(strength)
            out.append(NamedDirection(
                f"ganspace:{name}", "ganspace", pca, pca_domain, (first, end), s, (-abs(s), abs(s)),
                f"PCA component {comp}; strength = target coordinate", f"{GANSPACE_SOURCE}; {pca}.pt",
                _license(pca, registry)))
    return [d for d in out if domain is None or d.domain in (None, domain)]


def _license(file: str, registry: dict) -> str:
    entry = registry.get(file)
    return entry.license if entry is not None else "not in the weights registry"


def find(name: str, registry: dict | None = None) -> NamedDirection | None:
    return next((d for d in named_directions(None, registry) if d.name == name), None)


def model_domain(name: str | None) -> str | None:
    """The domain of a registry model (its `domain`, else told from the name, e.g. 'cars'); None when unknown.
    For a loaded checkpoint, FaceEditor.domain comes from its opts instead."""
    found = file_domain(name) if name else None
    return found or next((d for d in KNOWN_DOMAINS if d in str(name or "").lower()), None)


def domain_error(label: str, theirs: str, ours: str) -> EditError:
    return EditError(
        f"--direction {label}: a direction for {theirs} models, and this model is a {ours} model; use one made for "
        f"{ours} (`stylecli directions --model <a {ours} model>` lists them), sefa:K (found in any generator) or "
        "a direction file made for this model"
    )


def check_domain(direction: str | NamedDirection | object, model_domain: str | None) -> None:
    """Refuse a named direction found for another generator than the model's (files and SeFa are trusted).

    `direction` is a name (`age`, `ganspace:bald`), a NamedDirection, or an Edit (its `domain` attribute).
    """
    if model_domain is None:
        return
    if isinstance(direction, str):
        found = find(direction.strip())
        label, domain = direction, (found.domain if found else None)
    elif isinstance(direction, NamedDirection):
        label, domain = direction.name, direction.domain
    else:
        label, domain = getattr(direction, "label", "direction"), getattr(direction, "domain", None)
    if domain is not None and domain != model_domain:
        raise domain_error(label, domain, model_domain)


def short_license(text: str) -> str:
    """'MIT (omertov/encoder4editing); GANSpace (Apache-2.0)' -> 'MIT, Apache-2.0' (the text itself otherwise)."""
    found = re.findall(r"MIT|Apache-2\.0|CC BY[-A-Z ]*[\d.]+|BSD[-\w]*|GPL[-\w.]*", text)
    return ", ".join(dict.fromkeys(found)) or text


def listing(domain: str | None, registry: dict | None = None, every_domain: bool = False) -> list[dict]:
    """Rows for `stylecli directions`: the named directions of a domain (with the domain unknown: none, or all of
    them with `every_domain`), then the kinds that work for every model (SeFa, your own files)."""
    registry = _registry() if registry is None else registry
    named = named_directions(domain, registry) if domain is not None or every_domain else []
    rows = []
    for d in named:
        low, high = d.range
        rows.append({"name": d.name, "kind": d.kind, "domain": d.domain, "layers": d.layers_text,
                     "default": d.default, "range": [low, high], "strength": f"{d.default:g} ({low:g}..{high:g})",
                     "about": d.about, "source": d.source, "license": d.license, "file": d.file,
                     "source_short": SHORT_SOURCE.get(d.source.split(";")[0], d.source),
                     "license_short": short_license(d.license)})
    if domain in PCA_DOMAIN.values():
        rows.append({"name": "ganspace:N", "kind": "ganspace", "domain": domain, "layers": "--layers required",
                     "default": 0.0, "range": None, "strength": "target coordinate",
                     "about": "any PCA component N (0-79)", "source": "the PCA file", "license": "as the PCA file",
                     "file": None, "source_short": "PCA file", "license_short": "as the file"})
    rows.append({"name": "sefa:K", "kind": "sefa", "domain": None, "layers": "all or --layers", "default": 3.0,
                 "range": [-10.0, 10.0], "strength": "3 (-10..10)",
                 "about": "K-th closed-form direction of the generator (0 = strongest)",
                 "source": "computed from the model", "license": "as the model", "file": None,
                 "source_short": "the model", "license_short": "as the model"})
    rows.append({"name": "PATH.pt|PATH.npy", "kind": "file", "domain": None, "layers": "all or --layers",
                 "default": 3.0, "range": None, "strength": "3",
                 "about": "your own or a learned direction: [512], [1, 512], [n_styles, 512] or [1, n_styles, 512]",
                 "source": "yours (`stylecli directions learn`)", "license": "yours", "file": None,
                 "source_short": "yours", "license_short": "yours"})
    return rows
