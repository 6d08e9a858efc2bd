"""What the page does, without the page: open an upload, invert a face once, render edits, write downloads.

Uploads, inversions and edits are cached (a few, most recent first), so moving a slider costs one generator
pass and a paste-back. A face is inverted once per encoder choice (stylecli.serve.encoders: a model's own
encoder, or pivotal tuning from it). Each render writes its previews (and, when saved, its downloads) into a
fresh folder of the server's own temporary folder; old ones are removed.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.editing.base import Edit
from stylecli.errors import counted
from stylecli.naming import (
    face_stem,
    inversion_path,
    latent_path,
    pasted_path,
    sidecar_of,
    variant_name,
    variant_path,
    variant_stem,
    with_keep,
)
from stylecli.serve.encoders import Choice, choices, pick
from stylecli.serve.sliders import Direction

# What the page hears while a face is tuned: (step, most steps, LPIPS).
TuningReport = Callable[[int, int, float], None]

KEPT_RENDERS = 16  # render folders kept on disk (the web server copies what it serves into its own cache)
PREVIEW_SIZE = 1280  # the before/after view's longest side; the download keeps the photo's full resolution


@dataclass
class Upload:
    key: tuple
    name: str  # the file name as uploaded (what the command line and the sidecar call the photo)
    pixels: np.ndarray  # uint8 [H, W, 3], EXIF orientation applied
    notes: list[str]
    sources: list  # pipeline.sources.SourceFace of every face, largest first: its detection and aligned crop
    preview: Path  # the decoded photo at most PREVIEW_SIZE wide, the "before" of the comparison
    small: np.ndarray  # those pixels: slider moves paste into them, not into the full photo

    @property
    def faces(self) -> list:
        """stylecli.faces.Face of every face, largest first."""
        return [f.detected for f in self.sources]

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def small_quad(self, index: int) -> np.ndarray:
        """Face `index`'s quad in the preview's pixels."""
        scale = np.array([self.small.shape[1] / self.size[0], self.small.shape[0] / self.size[1]])
        return np.asarray(self.faces[index].quad, dtype=np.float64) * scale

    def stem(self, index: int, tag: str = "") -> str:
        """Output names as `stylecli edit` writes them: the photo's stem, the model settings' tag (`_tuned`),
        and _faceK with --faces K for any face but the largest."""
        base = Path(self.name).stem + tag
        return face_stem(base, index) if index else base


@dataclass
class Inverted:
    key: tuple
    upload: Upload
    index: int
    crop: np.ndarray  # the aligned crop the encoder saw
    code: np.ndarray  # float32 [n_styles, style_dim]
    reconstruction: np.ndarray
    choice: Choice  # the encoder (and tuning) that made the code
    weights: Any = None  # generator weights adapted to this photo (HyperStyle, tuning), else None
    notes: list[str] = field(default_factory=list)  # how tuning went


@dataclass
class Edited:
    code: np.ndarray  # the edited W+ code
    image: np.ndarray  # the generator's image of it
    steps: list[tuple[Direction, float]]  # (slider, strength as --strength takes it), in order
    name: str  # as `stylecli edit` names the variant: sefa-0+3_age-2 ("" when nothing is edited)
    notes: list[str] = field(default_factory=list)  # what --keep left of each direction
    kept: tuple[str, ...] = ()  # the directions --keep held (none when no slider it conditions moved)


@dataclass
class Rendered:
    image: np.ndarray  # the edited face
    before: Path  # preview of the photo (or the reconstruction, without paste-back)
    after: Path  # preview of the edited photo (or the edited face)
    files: list[Path]  # the downloads, when saved
    command: str
    steps: list[tuple[Direction, float]] = field(default_factory=list)
    split: float = 50.0  # where the before/after divider starts, in percent of the width: through the face
    notes: list[str] = field(default_factory=list)


class EditorSession:
    """The state one server shares between its requests: the model, the sliders and small caches."""

    def __init__(self, backend, directions: Sequence[Direction], workdir: Path, cache_size: int = 3,
                 encoders: Sequence[Choice] | None = None):
        """backend: the model the sliders were found for (and that reads and detects); encoders: the choices
        of the page, its own encoder first by default."""
        self.backend = backend
        self.encoders = list(encoders or choices([backend]))
        self.directions = list(directions)
        self.workdir = Path(workdir)
        self.cache_size = cache_size
        self._uploads: OrderedDict[tuple, Upload] = OrderedDict()
        self._inverted: OrderedDict[tuple, Inverted] = OrderedDict()
        self._edited: OrderedDict[tuple, Edited] = OrderedDict()
        self._resolved: dict[tuple[int, str], Edit] = {}  # the sliders' directions for the other models
        self._renders: deque[Path] = deque()
        self._count = 0
        self._lock = threading.Lock()

    # -- upload and inversion (cached) ----------------------------------------------------------------------

    def open(self, path: Path | str, name: str | None = None) -> Upload:
        """Read and detect once per uploaded file; InputError (one line) for what cannot be edited. name: the
        file's name on the user's machine (the web server strips characters such as `!$:` from its copy's)."""
        from stylecli.errors import InputError

        path = Path(path).resolve()
        name = upload_name(name, path)
        key = (str(path), name)  # the web server names each upload by its content's hash: one path, one photo
        if key in self._uploads:
            self._uploads.move_to_end(key)
            return self._uploads[key]
        if not path.is_file():
            raise InputError(f"{path.name}: the upload is gone; upload the photo again")
        no_face = f"{name}: no face found; try a photo where the face is larger or seen from the front"
        try:
            source = self.backend.open(path, no_face)
        except InputError as exc:  # name the file as the user knows it, not by the server's upload folder
            said = str(exc).replace(str(path), name).replace("with --max-pixels", "with `stylecli serve --max-pixels`")
            raise InputError(said) from None
        pixels, notes = source.photo.pixels, source.photo.notes
        with self._lock:
            self._count += 1
            folder = self.workdir / f"u{self._count}"  # lives as long as the upload stays in the cache
        folder.mkdir(parents=True)
        small = _shrink(pixels)
        upload = Upload(key, name, pixels, notes, source.faces, _write_jpeg(small, folder / "before.jpg"), small)
        return _remember(self._uploads, key, upload, self.cache_size,
                         lambda old: shutil.rmtree(old.preview.parent, ignore_errors=True))

    @property
    def keep_choices(self) -> list[tuple[str, str]]:
        """(label, direction) pairs `--keep` can hold: every slider but GANSpace's (target coordinates)."""
        return [(d.slider.label, d.slider.spec) for d in self.directions if not d.slider.relative]

    def cached(self, path: Path | str, name: str | None = None) -> Upload | None:
        """The upload already opened from this file, if any (no work)."""
        path = Path(path).resolve()
        return self._uploads.get((str(path), upload_name(name, path)))

    def invert(self, upload: Upload, index: int = 0, encoder: str | None = None,
               report: TuningReport | None = None) -> Inverted:
        """The face's code and reconstruction by one encoder choice (a key of `encoders`; None: the first),
        computed once. A tuning choice tunes from its model's own code; `report` hears its steps."""
        from stylecli.errors import InputError

        if not 0 <= index < len(upload.faces):
            raise InputError(f"{upload.name}: face {index} asked for, but {len(upload.faces)} found (0 is largest)")
        choice = pick(self.encoders, encoder)
        key = (upload.key, index, choice.key)
        if key in self._inverted:
            self._inverted.move_to_end(key)
            return self._inverted[key]
        backend, face, notes = choice.backend, upload.faces[index], []
        if choice.tuner is None:
            crop = upload.sources[index].crop
            code, weights = backend.encode(upload.sources[index])
        else:
            pivot = self.invert(upload, index, _own(self.encoders, backend).key)  # the encoder's code
            crop = pivot.crop
            follow = _Follow(report)
            code, weights = backend.tune(upload.pixels, face, pivot.code, choice.tuner,
                                         upload.stem(index, choice.name_tag), follow)
            if follow.result is not None:
                r = follow.result
                notes.append(f"tuned in {counted(r.steps, 'step')}, LPIPS {r.pivot_lpips:.3f} -> {r.lpips:.3f}")
        recon = backend.render(code, weights, [], "")[1]  # the reconstruction: no edit
        inverted = Inverted(key, upload, index, crop, code, recon, choice, weights, notes)
        return _remember(self._inverted, key, inverted, 2 * self.cache_size)

    def face_thumbnails(self, upload: Upload, size: int = 128) -> list[np.ndarray]:
        """Each detected face, a little wider than its box, for the gallery to pick from."""
        from PIL import Image

        h, w = upload.pixels.shape[:2]
        out = []
        for face in upload.faces:
            left, top, right, bottom = face.box
            pad = (right - left) // 3
            box = (max(left - pad, 0), max(top - pad, 0), min(right + pad, w), min(bottom + pad, h))
            out.append(np.asarray(Image.fromarray(upload.pixels).crop(box).resize((size, size))))
        return out

    # -- edits ----------------------------------------------------------------------------------------------

    def render(self, inverted: Inverted, values: Mapping[str, float], paste_back: bool = True,
               blend: str = "feather", keep: Sequence[str] = (), save: bool = True) -> Rendered:
        """Apply every slider away from 0 (in slider order, as repeated --direction flags are), render and paste
        back; `before`/`after` are previews at most PREVIEW_SIZE pixels wide. A preview pastes into the photo's
        preview; save: pastes into the full-resolution photo and writes the downloads (the edited photo, the face,
        the latent and its sidecar)."""
        edited = self.edit(inverted, values, keep, paste_back)
        upload, folder = inverted.upload, self._new_folder()
        pasted, split = None, 50.0
        if paste_back:
            backend, index = inverted.choice.backend, inverted.index
            if save:
                pasted = backend.paste(upload.pixels, edited.image, upload.faces[index].quad, blend)
                after = _write_jpeg(_shrink(pasted), folder / "after.jpg")
            else:
                small = backend.paste(upload.small, edited.image, upload.small_quad(index), blend)
                after = _write_jpeg(small, folder / "after.jpg")
            before = upload.preview
            split = round(100 * float(np.mean(upload.faces[index].quad[:, 0])) / upload.size[0], 1)
        else:
            before = _write_png(inverted.reconstruction, folder / "reconstruction.png")
            after = _write_png(edited.image, folder / "edited.png")
        files = self._save(inverted, edited, pasted, blend, folder) if save else []
        extra = [*inverted.choice.args, *max_pixels_args(self.backend.max_pixels)]
        command = command_line(upload.name, inverted.index, edited.steps, paste_back, blend, edited.kept, extra)
        return Rendered(edited.image, before, after, files, command, edited.steps, split, edited.notes)

    def edit(self, inverted: Inverted, values: Mapping[str, float], keep: Sequence[str] = (),
             paste_back: bool = False) -> Edited:
        """The edited code and face for these slider values (the last few are cached: saving after a preview
        costs no generator pass). Keep conditions the InterFaceGAN, SeFa and file sliders; GANSpace sliders (a
        target coordinate, which `--keep` refuses) move as they are. paste_back with every slider at 0: a
        zero-strength edit of the first slider, so that `stylecli edit --paste-back` makes the same photo."""
        active = [(d, float(values.get(d.slider.key) or 0.0)) for d in self.directions]
        active = [(d, v) for d, v in active if abs(v) > 1e-9]
        if not active and paste_back:
            active = [(d, 0.0) for d in self.directions if not d.slider.relative][:1]
        kept = list(keep) if any(not d.slider.relative and v for d, v in active) else []
        key = (inverted.key, tuple((d.slider.key, v) for d, v in active), tuple(kept))
        if key in self._edited:
            return self._edited[key]
        backend = inverted.choice.backend
        edits = [self._edit_of(d, backend) for d, _ in active]
        notes: list[str] = []
        if kept:
            fixed = [i for i, (d, _) in enumerate(active) if not d.slider.relative]
            conditioned, notes = backend.condition([edits[i] for i in fixed], [self._kept(k, backend) for k in kept])
            for i, edit in zip(fixed, conditioned):  # named as `stylecli edit --keep` names its files
                edits[i] = replace(edit, label=with_keep(edit.label, kept))
        if keep and any(d.slider.relative for d, _ in active):
            notes.append("Keep leaves the GANSpace sliders unconditioned (they move to a target coordinate)")
        code = inverted.code
        steps: list[tuple[Direction, float]] = []
        for (d, value), edit in zip(active, edits):
            strength = value
            if d.slider.relative:  # GANSpace: the CLI's strength is the target coordinate
                strength = round(_coordinate(edit, code) + value, 3)
            code = backend.apply(code, edit, strength)
            steps.append((d, strength))
        name = variant_name((e.label, s) for e, (_, s) in zip(edits, steps))
        image = inverted.reconstruction
        if any(v for _, v in active):  # the edits again, in the pipeline's render: the pixels `stylecli edit` writes
            code, image = backend.render(inverted.code, inverted.weights,
                                         [(e, s) for e, (_, s) in zip(edits, steps)], name)
        return _remember(self._edited, key, Edited(code, image, steps, name, notes, tuple(kept)), 4)

    def _kept(self, spec: str, backend) -> Edit | str:
        """A kept direction: the slider's own when there is one, else the spec for the model to resolve."""
        direction = next((d for d in self.directions if d.slider.spec == spec), None)
        return spec if direction is None else self._edit_of(direction, backend)

    def _edit_of(self, direction: Direction, backend) -> Edit:
        """A slider's direction for the model that encoded the face: resolved again from its spec for a model
        other than the sliders' own (SeFa is the generator's own), as `stylecli edit --model ...` resolves it."""
        if backend is self.backend:
            return direction.edit
        key = (id(backend), direction.slider.spec)
        if key not in self._resolved:
            self._resolved[key] = backend.resolve(direction.slider.spec)
        return self._resolved[key]

    def _save(self, inverted: Inverted, edited: Edited, pasted: np.ndarray | None, blend: str,
              folder: Path) -> list[Path]:
        """The downloads, named as `stylecli edit` names its outputs: the edited photo and face, the latent,
        its alignment sidecar and, for a face rendered with its own generator weights, those weights."""
        upload, variant, choice = inverted.upload, edited.name, inverted.choice
        stem = upload.stem(inverted.index, choice.name_tag)
        face = variant_path(folder, stem, variant) if variant else inversion_path(folder, stem)
        files = [_write_png(edited.image, face)]
        if pasted is not None:  # `edit --paste-back` names the whole photo by the photo's own stem
            whole = pasted_path(folder, Path(upload.name).stem + choice.name_tag, variant or "inversion", blend)
            files.insert(0, _write_png(pasted, whole))
        latent = latent_path(folder, variant_stem(stem, variant) if variant else stem)
        np.save(latent, edited.code.astype(np.float32))
        sidecar = choice.backend.write_sidecar(sidecar_of(latent), upload.name, upload.size,
                                               inverted.index, upload.faces[inverted.index])
        weights = choice.backend.write_weights(latent, edited.code, inverted.weights, choice.tuner)
        return [*files, latent, sidecar, *weights]

    def _new_folder(self) -> Path:
        with self._lock:
            self._count += 1
            folder = self.workdir / f"r{self._count}"  # one per render; the oldest go (KEPT_RENDERS)
            folder.mkdir(parents=True)
            self._renders.append(folder)
            while len(self._renders) > KEPT_RENDERS:
                shutil.rmtree(self._renders.popleft(), ignore_errors=True)
        return folder

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.workdir)


def command_line(name: str, index: int, steps: Sequence[tuple[Direction, float]], paste_back: bool, blend: str,
                 keep: Sequence[str], extra: Sequence[str]) -> str:
    """The `stylecli` command that makes the same files from the same photo (`--save-latent`: the latent the
    downloads hold); a comment saying why when no one command does (Keep with a GANSpace slider: `--keep`
    refuses GANSpace directions)."""
    if keep and any(d.slider.relative for d, _ in steps):
        return ("# not one stylecli command: `edit --keep` refuses GANSpace directions, which the page leaves "
                "unconditioned; untick Keep or set the GANSpace sliders to 0 for the command")
    parts = ["stylecli", "edit" if steps else "invert", name]
    if index:
        parts += ["--faces", str(index)]
    for d, strength in steps:
        parts += ["-d", d.slider.spec, "-s", f"{strength:g}"]
    if keep:
        parts += ["--keep", ",".join(keep)]
    if steps:
        parts.append("--save-latent")
    if steps and paste_back:
        parts.append("--paste-back")
        if blend != "feather":
            parts += ["--blend", blend]
    return shlex.join([*parts, *extra])


def max_pixels_args(max_pixels: int | None) -> list[str]:
    """--max-pixels N when the server reads larger photos than the CLI does by default."""
    from stylecli.constants import DEFAULT_MAX_PIXELS

    return ["--max-pixels", str(max_pixels)] if max_pixels and max_pixels != DEFAULT_MAX_PIXELS else []


def upload_name(name: str | None, path: Path) -> str:
    """The photo's name as the user's machine had it (the browser sends it; no folders), else the upload's."""
    name = Path(name or "").name
    return name if name not in ("", ".", "..") and "\0" not in name else path.name


def _own(encoders: Sequence[Choice], backend) -> Choice:
    """The choice that is a model's own encoder, without tuning."""
    return next(c for c in encoders if c.backend is backend and c.tuner is None)


class _Follow:
    """The Tuner's progress factory: each face's steps go to the server's log (as `--tune` reports them) and to
    the page; `result` is the last face's TuningResult."""

    def __init__(self, report: TuningReport | None):
        self.report, self.result = report, None

    def __call__(self, label: str, total: int) -> _Progress:
        from stylecli.tuning.progress import TuningBars

        return _Progress(self, TuningBars()(label, total), total)


class _Progress:
    def __init__(self, follow: _Follow, log, total: int):
        self.follow, self.log, self.total = follow, log, total

    def __call__(self, step: int, lpips: float, mse: float) -> None:
        if self.log is not None:
            self.log(step, lpips, mse)
        if self.follow.report is not None:
            self.follow.report(step, self.total, lpips)

    def close(self, result) -> None:
        self.follow.result = result
        if self.log is not None:
            self.log.close(result)


def _coordinate(edit, code: np.ndarray) -> float:
    import torch

    return float(edit.coordinate(torch.from_numpy(code)[None])[0])


def _remember(cache: OrderedDict, key, value, size: int, evicted: Callable[[Any], None] = lambda _: None):
    cache[key] = value
    while len(cache) > size:
        evicted(cache.popitem(last=False)[1])
    return value


def _shrink(pixels: np.ndarray) -> np.ndarray:
    """The photo at most PREVIEW_SIZE pixels on its longest side: light to paste into and to send."""
    from PIL import Image

    if max(pixels.shape[:2]) <= PREVIEW_SIZE:
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels))
    img.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _write_jpeg(pixels: np.ndarray, dest: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(pixels)).save(dest, format="JPEG", quality=92)
    return dest


def _write_png(pixels: np.ndarray, dest: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(pixels)).save(dest, format="PNG", compress_level=1)
    return dest
