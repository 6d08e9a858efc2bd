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
from stylecli.editing.kinds import BY_NAME, DIRECTION_FILES, FILE_KIND, SEFA_KIND, Slider
from stylecli.errors import StyleCliError

SEFA_COUNT = 5  # the strongest closed-form directions of the generator


@dataclass(frozen=True)
class Direction:
    slider: Slider
    edit: Edit


def discover(backend, directions_dir: Path | None = None,
             note: Callable[[str], None] = lambda _: None) -> list[Direction]:
    """Sliders for the named directions (`stylecli directions`) that load and fit the model, SeFa's strongest,
    and the files of `directions_dir`; `note` hears one line per file that is left out and why."""
    found: list[Direction] = []
    failed: set[str] = set()
    for slider, file in _named(backend):
        if file in failed:
            continue
        try:
            edit = backend.resolve(slider.spec)
        except StyleCliError as exc:
            failed.add(file)
            note(f"{slider.group} sliders reading {file} left out: {exc}")
            continue
        if _fits(backend, edit):
            found.append(Direction(slider, edit))
    found += [Direction(s, backend.resolve(s.spec)) for s in SEFA_KIND.sliders(SEFA_COUNT)]
    if directions_dir is not None:
        for path in sorted(p for p in Path(directions_dir).iterdir() if p.suffix in DIRECTION_FILES):
            try:
                edit = backend.resolve(str(path))
            except StyleCliError as exc:
                note(f"{path.name} left out: {exc}")
                continue
            if _fits(backend, edit):
                found.append(Direction(FILE_KIND.slider(path), edit))
            else:
                note(f"{path.name} left out: its shape does not fit this model")
    return _unique_keys(found)


def _named(backend) -> list[tuple[Slider, str]]:
    """(slider, the registry file it reads) for every named direction of the model's domain."""
    from stylecli.editing import named_directions

    if backend.style_dim != 512:  # the published directions are for 512-wide StyleGAN2 models
        return []
    return [(BY_NAME[d.kind].slider(d), d.file) for d in named_directions(backend.domain)]


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
