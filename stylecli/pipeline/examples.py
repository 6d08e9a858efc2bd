"""Example inputs for `directions learn`: saved latents as they are, photos aligned and inverted through the
pipeline's sources (FaceEditor.example_codes; editing.learn.learn_from_inputs fits the direction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stylecli.editing.learn import Examples
from stylecli.errors import StyleCliError, ends_run
from stylecli.naming import is_latent


def expand_examples(args: Sequence[str]) -> list[Path]:
    """Files as given; folders searched recursively for images and .npy latents (sorted, hidden files skipped)."""
    from stylecli.files.images import IMAGE_EXTENSIONS

    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += [p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith(".")
                    and (p.suffix.lower() in IMAGE_EXTENSIONS or is_latent(p))]
        else:
            out.append(path)
    return out


def example_codes(paths: Sequence[Path], editor: Any, align: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> Examples:
    """Read each .npy latent (checked against the model); align (unless align=False) and encode each photo with a
    FaceEditor, its batch size of faces per encoder call. An input that cannot be used (no face, unreadable, a
    latent of another shape) is listed in `failed`; the others still count."""
    from stylecli.editing.learn import check_example_shapes
    from stylecli.pipeline.sources import encode_faces, open_source

    out = Examples()
    pending: list[Any] = []  # SourceFaces of photos, encoded a batch at a time
    photos = sum(not is_latent(p) for p in paths)
    done = 0

    def flush() -> None:
        nonlocal done
        if pending:
            out.codes.extend(encode_faces(editor, pending).codes.cpu().numpy())
            done += len(pending)
            pending.clear()
            if progress:
                progress(done, photos)

    for path in map(Path, paths):
        try:
            source = open_source(editor, path, align=align, weights=False)
            if source.is_latent:
                out.codes.append(source.faces[0].code)
            else:
                pending.append(source.faces[0])
        except StyleCliError as exc:
            if ends_run(exc):  # a missing dlib or landmark model: no example can do better
                raise
            out.failed.append(str(exc))
            photos -= not is_latent(path)
        if len(pending) >= editor.batch_size:
            flush()
    flush()
    check_example_shapes(out)
    return out
