"""What the page does, without the page: open an upload, invert a face once, render edits, write downloads.

Work is shared, files are not. The work (an upload's decoded photo and faces, its inversions and its edits)
is one cache of uploads, most recent last, each holding what was computed from it: evicting an upload evicts
its inversions and edits, and none of it refers to a file. So moving a slider costs one generator pass and a
paste-back, and a photo two people upload is read and inverted once. A face is inverted once per encoder
choice (stylecli.serve.encoders: a model's own encoder, or pivotal tuning from it).

Files belong to a browser session (a Visitor, by the web server's session id): each render writes its previews
(and, when saved, its downloads) into a fresh folder of that session's own folder, which stays until the same
session has had newer renders of that output (KEPT_RENDERS) or the session is dropped: idle for
`Limits.session_timeout`, or the oldest idle one when a new session needs room (`Limits.max_sessions`; a
session in a request or used within `Limits.active_seconds` is never dropped: the newcomer hears "busy").
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.constants import SERVE_MAX_SESSIONS, SERVE_MAX_UPLOAD_MB, SERVE_SESSION_TIMEOUT_MIN
from stylecli.editing.base import Edit
from stylecli.errors import InputError, counted
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

KEPT_RENDERS = 2  # render folders kept per session and output (previews, downloads): the newest and the one before
PREVIEW_SIZE = 1280  # the before/after view's longest side; the download keeps the photo's full resolution
MAX_SESSIONS, SESSION_TIMEOUT_MIN, MAX_UPLOAD_MB = SERVE_MAX_SESSIONS, SERVE_SESSION_TIMEOUT_MIN, SERVE_MAX_UPLOAD_MB
ACTIVE_SECONDS = 60  # a session used this recently is active: never dropped to make room
GONE = "this page was idle and closed to make room for others: upload the photo again"
BUSY = "busy, try again in a moment (every one of the {n} sessions this server takes is in use)"


@dataclass(frozen=True)
class Limits:
    """What one server holds: sessions with files, their idle time-out, the upload size, the work cache."""

    max_sessions: int = MAX_SESSIONS
    session_timeout: float = SESSION_TIMEOUT_MIN * 60.0  # seconds
    max_upload_bytes: int = MAX_UPLOAD_MB * 1_000_000
    cache_size: int | None = None  # uploads whose work stays in memory; None: max_sessions
    active_seconds: float = ACTIVE_SECONDS

    @property
    def uploads_cached(self) -> int:
        return self.cache_size if self.cache_size is not None else max(self.max_sessions, 3)


class SessionNotice(InputError):
    """Not an error of the photo: the session was dropped, or the server is full (one line for the status)."""


@dataclass
class Visitor:
    """One browser session's files: its render folders (per output: previews, downloads) and the photo's
    preview it compares against (per upload), all inside its own folder."""

    id: str
    folder: Path
    last_seen: float
    active: int = 0  # requests in flight
    renders: dict[bool, deque] = field(default_factory=lambda: {False: deque(), True: deque()})  # save -> folders
    befores: dict[tuple, Path] = field(default_factory=dict)  # upload key -> the preview of the photo


@dataclass
class Upload:
    key: tuple
    name: str  # the file name as uploaded (what the command line and the sidecar call the photo)
    pixels: np.ndarray  # uint8 [H, W, 3], EXIF orientation applied
    notes: list[str]
    sources: list  # pipeline.sources.SourceFace of every face, largest first: its detection and aligned crop
    small: np.ndarray  # the photo at most PREVIEW_SIZE wide: slider moves paste into it, not into the full photo

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
class _Work:
    """What was computed from one upload: evicted with it."""

    upload: Upload
    inverted: OrderedDict = field(default_factory=OrderedDict)  # (upload key, face, encoder) -> Inverted
    edited: OrderedDict = field(default_factory=OrderedDict)  # (inverted key, sliders, keep) -> Edited


INVERSIONS_KEPT = 6  # per upload: faces x encoders
EDITS_KEPT = 4  # per upload: saving after a preview costs no generator pass


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
    """The state one server shares between its requests: the model, the sliders, the work cache, and the browser
    sessions' files (methods taking `client`: a session id; None: one local session, for scripts and tests)."""

    def __init__(self, backend, directions: Sequence[Direction], workdir: Path, cache_size: int | None = None,
                 encoders: Sequence[Choice] | None = None, limits: Limits | None = None):
        """backend: the model the sliders were found for (and that reads and detects); encoders: the choices
        of the page, its own encoder first by default; cache_size: uploads whose work is kept (default: the
        limits')."""
        self.backend = backend
        self.encoders = list(encoders or choices([backend]))
        self.directions = list(directions)
        self.workdir = Path(workdir)
        self.limits = limits or Limits()
        self.cache_size = cache_size or self.limits.uploads_cached
        self._work: OrderedDict[tuple, _Work] = OrderedDict()  # upload key -> its work, most recent last
        self._resolved: dict[tuple[int, str], Edit] = {}  # the sliders' directions for the other models
        self._visitors: OrderedDict[str, Visitor] = OrderedDict()
        self._gone: OrderedDict[str, None] = OrderedDict()  # sessions dropped, told once to upload again
        self._count = 0
        self._lock = threading.RLock()

    # -- browser sessions -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def visit(self, client: str | None = None, fresh: bool = False):
        """One request of a browser session: it is active (never dropped) until the request returns.
        SessionNotice (one line) when the session was dropped since its last request (fresh: a new upload,
        which needs no telling) or when the server is full of active sessions."""
        visitor = self._admit(client, fresh)
        try:
            yield visitor
        finally:
            with self._lock:
                visitor.active -= 1
                visitor.last_seen = time.monotonic()

    def _admit(self, client: str | None, fresh: bool = False, hold: bool = True) -> Visitor:
        key = client or ""
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            visitor = self._visitors.get(key)
            if visitor is None:
                if self._gone.pop(key, "new") is None and not fresh:
                    raise SessionNotice(GONE)
                if len(self._visitors) >= self.limits.max_sessions:
                    idle = [v for v in self._visitors.values()
                            if not v.active and now - v.last_seen >= self.limits.active_seconds]
                    if not idle:
                        raise SessionNotice(BUSY.format(n=len(self._visitors)))
                    self._drop(min(idle, key=lambda v: v.last_seen))
                self._count += 1
                visitor = self._visitors[key] = Visitor(key, self.workdir / f"s{self._count}", now)
            visitor.last_seen = now
            visitor.active += hold
            return visitor

    def _sweep(self, now: float) -> None:
        """Drop the sessions idle longer than the time-out."""
        for visitor in list(self._visitors.values()):
            if not visitor.active and now - visitor.last_seen > self.limits.session_timeout:
                self._drop(visitor)

    def _drop(self, visitor: Visitor) -> None:
        del self._visitors[visitor.id]
        self._gone[visitor.id] = None
        while len(self._gone) > 4096:
            self._gone.popitem(last=False)
        shutil.rmtree(visitor.folder, ignore_errors=True)

    @property
    def sessions(self) -> list[str]:
        """The ids of the sessions with files, oldest use first."""
        with self._lock:
            return sorted(self._visitors, key=lambda k: self._visitors[k].last_seen)

    # -- upload and inversion (cached) ----------------------------------------------------------------------

    def open(self, path: Path | str, name: str | None = None) -> Upload:
        """Read and detect once per uploaded file; InputError (one line) for what cannot be edited. name: the
        file's name on the user's machine (the web server strips characters such as `!$:` from its copy's)."""
        from stylecli.errors import InputError

        path = Path(path).resolve()
        name = upload_name(name, path)
        key = (str(path), name)  # the web server names each upload by its content's hash: one path, one photo
        with self._lock:
            if key in self._work:
                self._work.move_to_end(key)
                return self._work[key].upload
        if not path.is_file():
            raise InputError(f"{path.name}: the upload is gone; upload the photo again")
        size, cap = path.stat().st_size, self.limits.max_upload_bytes
        if size > cap:
            raise InputError(f"{name}: {size / 1e6:.1f} MB, over this server's upload limit of {cap / 1e6:g} MB "
                             "(`stylecli serve --max-upload-mb`)")
        no_face = f"{name}: no face found; try a photo where the face is larger or seen from the front"
        try:
            source = self.backend.open(path, no_face)
        except InputError as exc:  # name the file as the user knows it, not by the server's upload folder
            said = str(exc).replace(str(path), name).replace("with --max-pixels", "with `stylecli serve --max-pixels`")
            raise InputError(said) from None
        pixels, notes = source.photo.pixels, source.photo.notes
        return self._entry(Upload(key, name, pixels, notes, source.faces, _shrink(pixels))).upload

    def _entry(self, upload: Upload) -> _Work:
        """The upload's work in the cache (the first one when two requests opened the same photo at once; put
        back when it was evicted while a request still used it), most recent last; the oldest go with all
        that was computed from them."""
        with self._lock:
            work = self._work.get(upload.key)
            if work is None:
                work = _remember(self._work, upload.key, _Work(upload), self.cache_size)
            self._work.move_to_end(upload.key)
            return work

    @property
    def keep_choices(self) -> list[tuple[str, str]]:
        """(label, direction) pairs `--keep` can hold: every slider but GANSpace's (target coordinates)."""
        return [(d.slider.label, d.slider.spec) for d in self.directions if not d.slider.relative]

    def cached(self, path: Path | str, name: str | None = None) -> Upload | None:
        """The upload already opened from this file, if any (no work)."""
        path = Path(path).resolve()
        with self._lock:
            work = self._work.get((str(path), upload_name(name, path)))
        return None if work is None else work.upload

    def invert(self, upload: Upload, index: int = 0, encoder: str | None = None,
               report: TuningReport | None = None) -> Inverted:
        """The face's code and reconstruction by one encoder choice (a key of `encoders`; None: the first),
        computed once. A tuning choice tunes from its model's own code; `report` hears its steps."""
        from stylecli.errors import InputError

        if not 0 <= index < len(upload.faces):
            raise InputError(f"{upload.name}: face {index} asked for, but {len(upload.faces)} found (0 is largest)")
        choice = pick(self.encoders, encoder)
        key = (upload.key, index, choice.key)
        with self._lock:
            work = self._entry(upload)
            if key in work.inverted:
                work.inverted.move_to_end(key)
                return work.inverted[key]
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
        with self._lock:
            work = self._entry(upload)
            return work.inverted.get(key) or _remember(work.inverted, key, inverted, INVERSIONS_KEPT)

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
               blend: str = "feather", keep: Sequence[str] = (), save: bool = True,
               client: str | None = None) -> Rendered:
        """Apply every slider away from 0 (in slider order, as repeated --direction flags are), render and paste
        back; `before`/`after` are previews at most PREVIEW_SIZE pixels wide. A preview pastes into the photo's
        preview; save: pastes into the full-resolution photo and writes the downloads (the edited photo, the face,
        the latent and its sidecar). Every file is written for session `client`, in its own folder."""
        edited = self.edit(inverted, values, keep, paste_back)
        visitor = self._admit(client, hold=False)  # (inside visit(): the session the request holds)
        upload, folder = inverted.upload, self._new_folder(visitor)
        pasted, split = None, 50.0
        if paste_back:
            backend, index = inverted.choice.backend, inverted.index
            if save:
                pasted = backend.paste(upload.pixels, edited.image, upload.faces[index].quad, blend)
                after = _write_jpeg(_shrink(pasted), folder / "after.jpg")
            else:
                small = backend.paste(upload.small, edited.image, upload.small_quad(index), blend)
                after = _write_jpeg(small, folder / "after.jpg")
            before = self._before(visitor, upload)
            split = round(100 * float(np.mean(upload.faces[index].quad[:, 0])) / upload.size[0], 1)
        else:
            before = _write_png(inverted.reconstruction, folder / "reconstruction.png")
            after = _write_png(edited.image, folder / "edited.png")
        files = self._save(inverted, edited, pasted, blend, folder) if save else []
        self._keep(visitor, save, folder, before)
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
        with self._lock:
            work = self._entry(inverted.upload)
            if key in work.edited:
                work.edited.move_to_end(key)
                return work.edited[key]
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
        edited = Edited(code, image, steps, name, notes, tuple(kept))
        with self._lock:
            work = self._entry(inverted.upload)
            return work.edited.get(key) or _remember(work.edited, key, edited, EDITS_KEPT)

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

    def _new_folder(self, visitor: Visitor) -> Path:
        with self._lock:
            self._count += 1
            folder = visitor.folder / f"r{self._count}"  # one per render, in the session's own folder
        folder.mkdir(parents=True)
        return folder

    def _before(self, visitor: Visitor, upload: Upload) -> Path:
        """The session's own preview of the photo (written once per session and upload)."""
        with self._lock:
            path = visitor.befores.get(upload.key)
            if path is not None and path.is_file():
                return path
            self._count += 1
            folder = visitor.folder / f"u{self._count}"
        folder.mkdir(parents=True)
        path = _write_jpeg(upload.small, folder / "before.jpg")
        with self._lock:
            visitor.befores.setdefault(upload.key, path)
        return path

    def _keep(self, visitor: Visitor, save: bool, folder: Path, before: Path) -> None:
        """The session's newest render of an output (previews or downloads): older ones beyond KEPT_RENDERS go,
        and the photo previews no kept render compares against."""
        with self._lock:
            renders = visitor.renders[save]
            renders.append((folder, before))
            while len(renders) > KEPT_RENDERS:
                shutil.rmtree(renders.popleft()[0], ignore_errors=True)
            used = {b for rs in visitor.renders.values() for _, b in rs}
            for key, path in list(visitor.befores.items()):
                if path not in used:
                    del visitor.befores[key]
                    shutil.rmtree(path.parent, ignore_errors=True)

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
