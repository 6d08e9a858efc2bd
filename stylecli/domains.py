"""The generator domains (ffhq, cars, horse, church): each official generator's size, style count and GANSpace
PCA file, and the one rule that tells a checkpoint's domain from its opts. Dependency-free: the CLI reads it
before any model is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Domain:
    name: str
    size: int  # the official generator's output size (px)
    n_styles: int  # its style layers (1024 px -> 18, 512 -> 16, 256 -> 14)
    pca: str | None  # the registry's GANSpace PCA file for it; None: none is published


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("ffhq", 1024, 18, "ffhq_pca"),
    Domain("cars", 512, 16, "cars_pca"),
    Domain("horse", 256, 14, None),
    Domain("church", 256, 14, None),
)}
KNOWN_DOMAINS = tuple(DOMAINS)
DOMAIN_STYLES = {d.name: d.n_styles for d in DOMAINS.values()}
# The PCA file of each domain that has one, and the domain of each PCA file (when the registry names none).
PCA_DOMAIN = {d.pca: d.name for d in DOMAINS.values() if d.pca}
PCA_FOR_STYLES = {d.n_styles: d.pca for d in DOMAINS.values() if d.pca}


def named_domain(opts: dict[str, Any]) -> str | None:
    """The domain a checkpoint's opts name, as written (dataset_type 'ffhq_encode', 'ffhq_hypernet' -> 'ffhq'), or
    None when they name none. What the official formats decide by (HyperStyle's default W encoder is for ffhq;
    ReStyle's cars models are refused); `domain_of` also checks an ffhq claim against the style count."""
    kind = opts.get("dataset_type")
    return kind.removesuffix("_encode").removesuffix("_hypernet") if isinstance(kind, str) and kind else None


def domain_of(opts: dict[str, Any], n_styles: int | None = None) -> str | None:
    """The training domain of a checkpoint from its opts (dataset_type 'ffhq_encode', 'ffhq_hypernet' -> 'ffhq'),
    or None when unknown.

    'ffhq_encode' is also the training default (of `stylecli train` and of the official repositories), which
    encoders trained on other generators keep: an ffhq claim is believed only when the generator has FFHQ's 18
    style layers (given `n_styles`). Any other dataset_type is someone's deliberate choice and is taken as
    written. With the domain unknown, registry directions are not refused for their domain (only their shape is
    checked)."""
    domain = named_domain(opts)
    if domain == "ffhq" and n_styles is not None and n_styles != DOMAIN_STYLES["ffhq"]:
        return None
    return domain
