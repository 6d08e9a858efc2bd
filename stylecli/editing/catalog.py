"""The named directions: what each one is, which generator (domain) it was found for, its layers, a suggested
strength range, where it comes from and under which license.

Domains come from the weights registry (the `domain` of the file a direction reads), so a private registry
decides for its own files; a direction whose file has no domain is trusted, like a user's own file.
"""

from __future__ import annotations

import re

from stylecli.domains import DOMAIN_STYLES, KNOWN_DOMAINS
from stylecli.editing.kinds import KINDS, kind_of
from stylecli.editing.named import SHORT_SOURCE, NamedDirection, domain_error, file_domain, load_registry


def named_directions(domain: str | None = None, registry: dict | None = None) -> list[NamedDirection]:
    """Every named direction (only those of `domain` when given), InterFaceGAN first, then GANSpace presets."""
    registry = load_registry() if registry is None else registry
    out = [d for kind in KINDS for d in kind.named(registry)]
    return [d for d in out if domain is None or d.domain in (None, domain)]


def fits_styles(d: NamedDirection, n_styles: int | None) -> bool:
    """Whether a named direction was found for a generator of `n_styles` style layers (True when either is
    unknown): GANSpace presets and per-layer directions of an 18-layer FFHQ generator do not apply to 14 layers."""
    theirs = DOMAIN_STYLES.get(d.domain) if d.domain else None
    return n_styles is None or theirs is None or theirs == n_styles


def on_this_machine(d: NamedDirection, registry: dict) -> bool:
    """Whether a named direction's file is here already (resolving it needs no download)."""
    from stylecli.registry import weights

    entry = registry.get(d.file)
    return entry is not None and weights.locate(entry) is not None


def preview_names(domain: str | None, n_styles: int | None, registry: dict | None = None
                  ) -> tuple[list[str], list[NamedDirection]]:
    """What `directions preview` shows without --names: the model's named directions (for an unknown domain,
    those found for a generator of `n_styles` layers) whose files are on this machine (SeFa's five strongest
    when none is), and the named directions left out for want of a download."""
    registry = load_registry() if registry is None else registry
    named = [d for d in named_directions(domain, registry) if domain is not None or fits_styles(d, n_styles)]
    here = [d.name for d in named if on_this_machine(d, registry)]
    return here or [f"sefa:{k}" for k in range(5)], [d for d in named if d.name not in here]


def find(name: str, registry: dict | None = None) -> NamedDirection | None:
    return next((d for d in named_directions(None, registry) if d.name == name), None)


def suggested_range(spec: str, registry: dict | None = None) -> tuple[float, float] | None:
    """The suggested strengths `stylecli directions` lists for a spec: a named direction's range, else its kind's
    (sefa:K), else None (a file: its default strength only)."""
    named = find(spec.strip(), registry)
    if named is not None:
        return named.range
    found = kind_of(spec.strip())
    row = found[0].row(None) if found is not None else None
    span = row.get("range") if row is not None else None
    return (float(span[0]), float(span[1])) if span else None


def model_domain(name: str | None) -> str | None:
    """The domain of a registry model (its `domain`, else told from the name, e.g. 'cars'); None when unknown.
    For a loaded checkpoint, FaceEditor.domain comes from its opts instead."""
    found = file_domain(name) if name else None
    return found or next((d for d in KNOWN_DOMAINS if d in str(name or "").lower()), None)


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


def listing(domain: str | None, registry: dict | None = None, every_domain: bool = False,
            n_styles: int | None = None) -> list[dict]:
    """Rows for `stylecli directions`: the named directions of a domain (with the domain unknown: none, or all of
    them with `every_domain`, then only those found for a generator of `n_styles` layers when given; a domain
    named by the model is taken as written), then the kinds that work for every model (SeFa, your own files)."""
    registry = load_registry() if registry is None else registry
    named = named_directions(domain, registry) if domain is not None or every_domain else []
    named = [d for d in named if domain is not None or fits_styles(d, n_styles)]
    rows = []
    for d in named:
        low, high = d.range
        rows.append({"name": d.name, "kind": d.kind, "domain": d.domain, "layers": d.layers_text,
                     "default": d.default, "range": [low, high], "strength": f"{d.default:g} ({low:g}..{high:g})",
                     "about": d.about, "source": d.source, "license": d.license, "file": d.file,
                     "source_short": SHORT_SOURCE.get(d.source.split(";")[0], d.source),
                     "license_short": short_license(d.license)})
    rows += [row for kind in KINDS if (row := kind.row(domain)) is not None]
    return rows
