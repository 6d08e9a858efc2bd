"""The front half of every job: an input -> the faces to encode, or the codes to render, with their weights.

An input is a photo (a file, a uint8 array or a `Photo`), an aligned crop (`align=False`) or a saved latent
(`NAME.npy`, with what `invert` wrote beside it: the sidecar that says where the face was, and the per-photo
generator weights file: HyperStyle's offsets or tuned weights). `open_source` reads it into a `Source`: its photo
and one `SourceFace` per chosen face; `encode_faces` turns faces into codes (saved latents as they are, crops
encoded together in batches, tuned when asked) with each face's generator weights. The batch jobs, the browser
editor, evaluation, `directions learn` / `preview`, `mix` and training's alignment cache all start here, so the
notes and errors of reading an input are written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylecli.encoders.base import Encoded
from stylecli.errors import InputError
from stylecli.naming import is_latent, sidecar_of, tuned_weights_path
from stylecli.pipeline.results import Photo

if TYPE_CHECKING:
    from stylecli.faces import Face
    from stylecli.tuning.stage import Tuner


@dataclass
class SourceFace:
    """One face of an input: an image to encode (`crop`) or a saved latent to render (`code`)."""

    crop: np.ndarray | None = None  # the encoder's input: an aligned crop, or a --no-align image
    code: np.ndarray | None = None  # a saved latent, checked against the model, float32 [n_styles, dim]
    index: int | None = None  # the face's index in the photo (0 = largest) when detected here
    detected: Face | None = None  # its box, landmarks and quad when detected here
    quad: np.ndarray | None = None  # where it sits in the photo (detected, or a saved latent's sidecar)
    offsets: Any = None  # a saved HyperStyle latent's compact offsets (weights built when rendered)
    weights: Any = None  # a saved latent's tuned GeneratorWeights
    tuning: dict[str, str] | None = None  # and how they were tuned (the tuned file's record)
    target: np.ndarray | None = None  # the face at the generator's resolution, for pivotal tuning


@dataclass
class Source:
    """An input read: the photo its faces come from (None for a latent without its photo) and the faces."""

    path: Path | None
    photo: Photo | None
    faces: list[SourceFace]
    notes: list[str] = field(default_factory=list)

    @property
    def is_latent(self) -> bool:
        return bool(self.faces) and self.faces[0].code is not None


def open_source(editor: Any, item: Any, *, align: bool = True, faces: str = "largest",
                latents: bool = True, saved_tuning: bool = True, weights: bool = True,
                photo_of_latent: bool = False, no_face: str | None = None) -> Source:
    """Read one input into its faces (InputError, one line naming the file, when it cannot be used).

    align: detect and align (False: the image is an aligned crop). faces: largest | all | an index.
    latents: whether a saved latent is accepted. saved_tuning: render a latent through the tuned weights beside
    it (else the shared generator). weights=False: the latent's code alone (no per-photo weights read).
    photo_of_latent: also read the photo a latent's sidecar names, and the face's quad, for paste-back.
    no_face: the message when no face is found (default: faces.select_faces's)."""
    if isinstance(item, (str, Path)) and is_latent(item):
        if not latents:
            raise InputError(f"{item}: a latent file; this command needs an image")
        source = _latent_source(editor, Path(item), saved_tuning, weights)
        if photo_of_latent:
            _place_latent(editor, source)
        return source
    photo = editor.read(item)
    if not align:
        return Source(photo.source, photo, [SourceFace(crop=photo.pixels)], photo.notes + squash_note(photo))
    from stylecli.faces import select_faces

    found = editor.detect(photo)
    name = photo.source or "the photo"
    if not found and no_face:
        raise InputError(no_face)
    chosen = select_faces(found, faces, name)
    return Source(photo.source, photo, [SourceFace(crop=editor.align(photo, face), index=i, detected=face,
                                                   quad=face.quad)
                                        for i, face in chosen], list(photo.notes))


def _latent_source(editor: Any, path: Path, saved_tuning: bool, weights: bool) -> Source:
    """A saved latent, checked against the model, with the per-photo weights beside it that it renders through."""
    from stylecli import photo_weights
    from stylecli.files.images import read_latent

    code = editor.check_codes(read_latent(path), path)[0].cpu().numpy()
    face = SourceFace(code=code)
    if not weights:
        return Source(path, None, [face])
    face.offsets = photo_weights.read_offsets(editor.encoder, path, code)
    notes = []
    if saved_tuning and photo_weights.has_tuned_weights(path):
        face.tuning = photo_weights.tuning_record(path)
        face.weights = photo_weights.read_tuned_weights(path, editor.generator, editor.generator_fingerprint, code)
        notes.append(f"rendering through {tuned_weights_path(path)} (--no-tune ignores it)")
    return Source(path, None, [face], notes)


def _place_latent(editor: Any, source: Source) -> None:
    """A saved latent's photo and quad, from the sidecar `invert` wrote beside it."""
    from stylecli.faces import read_sidecar, sidecar_photo

    latent = source.path
    side = sidecar_of(latent)
    if not side.is_file():
        raise InputError(f"{latent}: --paste-back needs to know where the face was: keep the {side.name} written "
                         "by `invert` next to the latent (or edit the photo itself)")
    data = read_sidecar(side)
    photo_path = sidecar_photo(side, data)
    try:
        photo = editor.read(photo_path)
    except InputError as exc:
        raise InputError(f"{latent}: --paste-back needs the original photo: {exc}") from None
    if list(photo.size) != list(data["image_size"]):
        raise InputError(f"{latent}: {photo_path} is no longer the photo that was aligned (its size changed)")
    source.photo = photo
    source.faces[0].quad = data["quad"]


def squash_note(photo: Photo) -> list[str]:
    """--no-align resizes to a square: say so when the image is not one (a warning when it is far from one)."""
    w, h = photo.size
    if w == h:
        return []
    note = f"not square ({w}x{h}): resized to 256x256 without keeping the aspect ratio"
    return [f"warning: {note}; align it (drop --no-align) or crop it square" if max(w, h) > 1.25 * min(w, h)
            else note]


def add_tuning_targets(editor: Any, source: Source) -> None:
    """--tune: each face's target at the generator's resolution (a saved latent cannot be tuned)."""
    for face in source.faces:
        if face.code is not None:
            raise InputError(f"{source.path}: --tune needs the photo, not a latent: run `stylecli invert PHOTO "
                             "--tune` (it writes the tuned weights beside the latent) or edit the photo itself")
        face.target = editor.target(source.photo, face.quad)


def encode_faces(editor: Any, faces: Sequence[SourceFace], tuner: Tuner | None = None,
                 labels: Sequence[str] | None = None) -> Encoded:
    """The W+ codes [B, n, d] of faces, in order (saved latents as they are; crops encoded together, in the
    editor's batches, then tuned face by face with `tuner`), with per-face generator weights (`Encoded.weights`:
    None when no face has any)."""
    import torch

    to_encode = [k for k, f in enumerate(faces) if f.code is None]
    encoded = editor.encode([faces[k].crop for k in to_encode]) if to_encode else None
    if encoded is not None and tuner is not None:
        names = None if labels is None else [labels[k] for k in to_encode]
        encoded = editor.tune([faces[k].target for k in to_encode], encoded, tuner, names)
    codes, weights, k = [], [], 0
    for face in faces:
        if face.code is not None:
            codes.append(torch.as_tensor(face.code, device=editor.device))
            weights.append(face.weights if face.weights is not None else saved_offsets(editor, face.offsets))
        else:
            codes.append(encoded.codes[k])
            weights.append(encoded.weights[k] if encoded.weights is not None else None)
            k += 1
    if not codes:
        return Encoded(torch.empty(0, editor.n_styles, editor.style_dim, device=editor.device))
    return Encoded(torch.stack(codes), weights if any(w is not None for w in weights) else None)


def saved_offsets(editor: Any, offsets: Any) -> Any:
    """A saved latent's HyperStyle offsets as generator weights (None when it has none)."""
    from stylecli.photo_weights import offsets_weights

    return offsets_weights(editor.encoder, offsets)


def source_code(editor: Any, item: Any, align: bool = True, saved_tuning: bool = True) -> Encoded:
    """One input's code [1, n, d] (its saved latent, or its largest face encoded) with its generator weights:
    what `mix` and `directions preview` start from (saved_tuning: a latent renders through the tuned weights
    beside it, as `edit` renders it)."""
    source = open_source(editor, item, align=align, saved_tuning=saved_tuning)
    return encode_faces(editor, source.faces[:1])
