"""The sliders of the page: every direction that fits the loaded model, with a suggested range.

Slider values are strengths as `stylecli edit --strength` takes them, except for GANSpace, whose strength is a
target coordinate: there the slider moves the coordinate away from the face's own (0 = unchanged), and the
command line shows the absolute target.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylecli.editing.base import Edit
from stylecli.errors import StyleCliError

SEFA_COUNT = 5  # the strongest closed-form directions of the generator
DIRECTION_FILES = (".pt", ".pth", ".npy")
# Suggested strengths of the published InterFaceGAN directions (see `stylecli directions`).
INTERFACEGAN_RANGES = {"age": 5.0, "smile": 3.0, "pose": 3.0}
PCA_FOR_DOMAIN = {"ffhq": "ffhq_pca", "cars": "cars_pca"}


@dataclass(frozen=True)
class Slider:
    spec: str  # what --direction takes
    label: str
    group: str
    limit: float  # the slider spans [-limit, limit]; 0 means no edit
    step: float
    key: str  # a Python identifier: the parameter's name in the `edit` API
    relative: bool = False  # GANSpace: the value shifts the face's own coordinate


@dataclass(frozen=True)
class Direction:
    slider: Slider
    edit: Edit


def discover(backend, directions_dir: Path | None = None,
             note: Callable[[str], None] = lambda _: None) -> list[Direction]:
    """Sliders for the named directions that load and fit the model, SeFa's strongest, and the files of
    `directions_dir`; `note` hears one line per group that is left out and why."""
    found: list[Direction] = []
    for group, candidates in _named(backend):
        try:
            found += [Direction(s, e) for s, e in ((s, backend.resolve(s.spec)) for s in candidates)
                      if _fits(backend, e)]
        except StyleCliError as exc:
            note(f"{group} sliders left out: {exc}")
    found += [Direction(s, backend.resolve(s.spec)) for s in _sefa()]
    if directions_dir is not None:
        for path in sorted(p for p in Path(directions_dir).iterdir() if p.suffix in DIRECTION_FILES):
            try:
                edit = backend.resolve(str(path))
            except StyleCliError as exc:
                note(f"{path.name} left out: {exc}")
                continue
            if _fits(backend, edit):
                found.append(Direction(Slider(str(path), path.stem, "Your directions", 5.0, 0.1,
                                              f"file_{path.stem}"), edit))
            else:
                note(f"{path.name} left out: its shape does not fit this model")
    return _unique_keys(found)


def _named(backend) -> list[tuple[str, list[Slider]]]:
    from stylecli.editing.ganspace import NAMED_EDITS

    groups: list[tuple[str, list[Slider]]] = []
    if backend.style_dim != 512:  # the published directions are for 512-wide StyleGAN2 models
        return groups
    if backend.domain in (None, "ffhq"):
        groups.append(("InterFaceGAN", [Slider(name, name, "InterFaceGAN", limit, 0.1, name)
                                        for name, limit in INTERFACEGAN_RANGES.items()]))
    pca = PCA_FOR_DOMAIN.get(backend.domain or "ffhq")
    if pca and {"ffhq_pca": 18, "cars_pca": 16}[pca] == backend.n_styles:
        groups.append(("GANSpace", [
            Slider(f"ganspace:{name}", name.replace("_", " "), "GANSpace", round(abs(value) * 1.5), 0.5,
                   f"ganspace_{name}", relative=True)
            for name, (_, _, _, value) in NAMED_EDITS[pca].items()]))
    return groups


def _sefa() -> list[Slider]:
    return [Slider(f"sefa:{k}", f"SeFa {k}", "SeFa", 10.0, 0.1, f"sefa_{k}") for k in range(SEFA_COUNT)]


def _fits(backend, edit: Edit) -> bool:
    code = np.zeros((backend.n_styles, backend.style_dim), dtype=np.float32)
    try:
        return backend.apply(code, edit, 1.0).shape == code.shape
    except StyleCliError:
        return False


def _unique_keys(directions: list[Direction]) -> list[Direction]:
    seen: set[str] = set()
    out = []
    for d in directions:
        key = re.sub(r"\W", "_", d.slider.key)
        key = key if key[:1].isalpha() else f"d_{key}"
        base, n = key, 1
        while key in seen:
            n += 1
            key = f"{base}_{n}"
        seen.add(key)
        s = d.slider
        out.append(Direction(Slider(s.spec, s.label, s.group, s.limit, s.step, key, s.relative), d.edit))
    return out
