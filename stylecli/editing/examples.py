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


def crop_of(editor: Any, path: Path, align: bool = True) -> np.ndarray:
    """What the encoder sees of a photo: the FFHQ crop of its largest face, or the photo itself (align=False)."""
    photo = editor.read(path)
    if not align:
        return photo.pixels
    from stylecli.faces import select_faces

    (_, face), *_ = select_faces(editor.detect(photo), "largest", path)
    return editor.align(photo, face)


def code_of(editor: Any, path: Path, align: bool = True) -> Any:
    """The W+ code [1, n_styles, dim] of one input: a saved .npy latent (checked against the model) or a photo."""
    from stylecli.images import read_latent

    path = Path(path)
    if path.suffix.lower() == ".npy":
        return editor.check_codes(read_latent(path), path)
    return editor.encode([crop_of(editor, path, align)]).codes


def example_codes(paths: Sequence[Path], editor: Any = None, align: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> Examples:
    """Read each .npy latent; align (unless align=False) and encode each photo with a FaceEditor, its batch size
    of faces per encoder call. An input that cannot be used (no face, unreadable, a latent of another shape) is
    listed in `failed`; the others still count."""
    from stylecli.images import read_latent

    out = Examples()
    pending: list[np.ndarray] = []
    photos = sum(Path(p).suffix.lower() != ".npy" for p in paths)
    done = 0

    def flush() -> None:
        nonlocal done
        if pending:
            out.codes.extend(editor.encode(pending).codes.cpu().numpy())
            done += len(pending)
            pending.clear()
            if progress:
                progress(done, photos)

    for path in map(Path, paths):
        try:
            if path.suffix.lower() == ".npy":
                code = read_latent(path)
                out.codes.append(code if editor is None else editor.check_codes(code, path)[0].cpu().numpy())
            else:
                pending.append(crop_of(editor, path, align))
        except StyleCliError as exc:
            out.failed.append(str(exc))
            photos -= path.suffix.lower() != ".npy"
        if editor is not None and len(pending) >= editor.batch_size:
            flush()
    flush()
    shapes = {c.shape for c in out.codes}
    if len(shapes) > 1:
        raise StyleCliError(f"the example latents have different shapes ({', '.join(map(str, sorted(shapes)))}); "
                            "use latents of one model")
    return out
