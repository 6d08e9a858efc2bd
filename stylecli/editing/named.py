"""The named directions' facts: the InterFaceGAN table, where each comes from, and what the weights registry says
of their files (domain, license). The kinds (editing/kinds.py) build the catalog from these."""

from __future__ import annotations

from dataclasses import dataclass

from stylecli.constants import INTERFACEGAN_NAMES
from stylecli.editing.base import EditError

E4E_SOURCE = "omertov/encoder4editing@99ea505"
NADA_SOURCE = "rinongal/StyleGAN-nada@dc8406a"
GANSPACE_SOURCE = "harskish/ganspace notebooks/figure_teaser.ipynb"
SHORT_SOURCE = {E4E_SOURCE: "e4e", NADA_SOURCE: "StyleGAN-nada", GANSPACE_SOURCE: "GANSpace"}

# name -> (meaning, suggested range, source, default strength). The StyleGAN-nada ranges and defaults follow the
# distances that repository's ZSSGAN/generate_videos.py suggests (SUGGESTED_DISTANCES: gender 3, hair_length 4,
# beard 2). The names and their order are constants.INTERFACEGAN_NAMES (read by `edit -h` without this module).
_INTERFACEGAN_FACTS: dict[str, tuple[str, tuple[float, float], str, float]] = {
    "age": ("InterFaceGAN age: + older, - younger", (-5.0, 5.0), E4E_SOURCE, 3.0),
    "smile": ("InterFaceGAN smile: + smiling, - neutral", (-3.0, 3.0), E4E_SOURCE, 3.0),
    "pose": ("InterFaceGAN head pose (yaw), one row per layer", (-3.0, 3.0), E4E_SOURCE, 3.0),
    "gender": ("InterFaceGAN gender", (-3.0, 3.0), NADA_SOURCE, 3.0),
    "beard": ("InterFaceGAN beard", (-2.0, 2.0), NADA_SOURCE, 2.0),
    "hair_length": ("InterFaceGAN hair length", (-4.0, 4.0), NADA_SOURCE, 3.0),
}
INTERFACEGAN = {name: _INTERFACEGAN_FACTS[name] for name in INTERFACEGAN_NAMES}


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


def load_registry() -> dict:
    """The weights registry (empty when it cannot be read: then nothing has a registry domain)."""
    from stylecli.registry import weights

    try:
        return weights.load_registry()
    except (OSError, ValueError):
        return {}


def file_domain(name: str, registry: dict | None = None) -> str | None:
    """The domain the registry gives a direction file (None when it gives none or lacks the entry)."""
    registry = load_registry() if registry is None else registry
    entry = registry.get(name)
    return (getattr(entry, "domain", "") or None) if entry is not None else None


def named_domain(file: str, published: str, registry: dict | None = None) -> str | None:
    """The registry's domain for a named direction's file; the published one when the registry lacks the entry."""
    registry = load_registry() if registry is None else registry
    return file_domain(file, registry) if file in registry else published


def license_of(file: str, registry: dict) -> str:
    entry = registry.get(file)
    return entry.license if entry is not None else "not in the weights registry"


def domain_error(label: str, theirs: str, ours: str) -> EditError:
    return EditError(
        f"--direction {label}: a direction for {theirs} models, and this model is a {ours} model; use one made for "
        f"{ours} (`stylecli directions --model <a {ours} model>` lists them), sefa:K (found in any generator) or "
        "a direction file made for this model"
    )
