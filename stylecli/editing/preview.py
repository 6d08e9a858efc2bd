"""Preview directions on one code: per direction, the images at -S, 0 and +S, one generator batch per row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stylecli.editing.base import Edit
from stylecli.editing.catalog import suggested_range
from stylecli.errors import StyleCliError


@dataclass
class PreviewRow:
    name: str
    strengths: list[float]
    images: np.ndarray | None = None  # uint8 [len(strengths), H, W, 3]
    error: str | None = None

    @property
    def labels(self) -> list[str]:
        return [f"{s:+g}" if s else "0" for s in self.strengths]


def row_strengths(name: str, edit: Edit, strength: float | None) -> list[float]:
    """-S, 0, +S: S given, else the suggested range `stylecli directions` lists (a named direction's, SeFa's),
    else the edit's default strength."""
    if strength is not None:
        return [-abs(strength), 0.0, abs(strength)]
    suggested = suggested_range(name)
    if suggested is not None:
        low, high = suggested
        return [low, 0.0, high]
    s = abs(edit.default_strength) or 3.0
    return [-s, 0.0, s]


def preview_rows(names: Sequence[str], resolve: Callable[[str], Edit],
                 render: Callable[[Edit, list[float]], np.ndarray], strength: float | None = None,
                 progress: Callable[[str], None] | None = None) -> list[PreviewRow]:
    """Render each direction at three strengths. `resolve` builds an edit from a name (and may refuse it: that row
    gets the error, the others still render); `render(edit, strengths)` gives the code's images at those strengths
    (the pipeline's render: the face's own generator weights included)."""
    rows = []
    for name in names:
        try:
            edit = resolve(name)
            strengths = row_strengths(name, edit, strength)
            rows.append(PreviewRow(name, strengths, render(edit, strengths)))
        except StyleCliError as exc:
            if exc.exit_code >= 3:  # a download that failed: said once, the run ends (retrying may help)
                raise
            message = str(exc)
            rows.append(PreviewRow(name, [], error=message if name in message else f"{name}: {message}"))
            continue
        if progress:
            progress(name)
    return rows
