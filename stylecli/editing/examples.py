"""The codes of example inputs for `directions learn`: saved latents as they are, photos aligned and inverted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.errors import StyleCliError


@dataclass
class Examples:
    codes: list[np.ndarray] = field(default_factory=list)  # one [n_styles, dim] per usable input
    failed: list[str] = field(default_factory=list)  # one message per input that gave no code


def expand_examples(args: Sequence[str]) -> list[Path]:
    """Files as given; folders searched recursively for images and .npy latents (sorted, hidden files skipped)."""
    from stylecli.images import IMAGE_EXTENSIONS

    wanted = IMAGE_EXTENSIONS | {".npy"}
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += [p for p in sorted(path.rglob("*"))
                    if p.is_file() and p.suffix.lower() in wanted and not p.name.startswith(".")]
        else:
            out.append(path)
    return out


def needs_model(paths: Sequence[Path]) -> bool:
    return any(Path(p).suffix.lower() != ".npy" for p in paths)


def example_codes(paths: Sequence[Path], inverter: Any = None, align: bool = True, batch: int = 8,
                  progress: Callable[[int, int], None] | None = None) -> Examples:
    """Read each .npy latent; align (unless align=False) and encode each photo, `batch` faces per encoder call.

    An input that cannot be used (no face, unreadable, a latent of another shape) is listed in `failed`; the
    others still count.
    """
    from stylecli.images import read_latent
    from stylecli.runner import RunOptions, single_item

    out = Examples()
    aligner = None
    if align and needs_model(paths):
        from stylecli.faces import FaceAligner

        aligner = FaceAligner()
    options = RunOptions(align=align)
    pending: list[tuple[Path, np.ndarray]] = []
    photos = sum(Path(p).suffix.lower() != ".npy" for p in paths)
    done = 0

    def flush() -> None:
        nonlocal done
        if pending:
            codes = inverter.encode([pixels for _, pixels in pending]).float().cpu().numpy()
            out.codes.extend(codes)
            done += len(pending)
            pending.clear()
            if progress:
                progress(done, photos)

    for path in map(Path, paths):
        try:
            if path.suffix.lower() == ".npy":
                out.codes.append(read_latent(path, inverter.n_styles if inverter is not None else None))
            else:
                pending.append((path, single_item(path, options, aligner).pixels))
        except StyleCliError as exc:
            out.failed.append(str(exc))
            if path.suffix.lower() != ".npy":
                photos -= 1
        if len(pending) >= batch:
            flush()
    flush()
    shapes = {c.shape for c in out.codes}
    if len(shapes) > 1:
        raise StyleCliError(f"the example latents have different shapes ({', '.join(map(str, sorted(shapes)))}); "
                            "use latents of one model")
    return out
