"""Running a job over many inputs: read, align, select faces, process, write; one record per input.

One bad input never stops the others; each input's outputs are written all-or-nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stylecli.errors import InputError, StyleCliError
from stylecli.images import DEFAULT_MAX_PIXELS, read_image, write_png
from stylecli.inputs import output_stems


@dataclass
class Record:
    """What happened to one input; `--json` prints exactly this."""

    input: str
    ok: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.faces:
            del data["faces"]
        return data


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass
class RunOptions:
    out_dir: Path = Path(".")
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    align: bool = True
    faces: str = "largest"  # largest | all | index
    detector_upsample: int | None = None


@dataclass
class Item:
    """One unit of work: an aligned face (or a pre-aligned image), or a saved latent."""

    source: Path
    stem: str  # output name stem, unique within the batch (faces get _faceK)
    prefix: str  # prefix of this item's keys in the record's outputs ("" or "face1.")
    pixels: np.ndarray | None = None  # encoder input, uint8 [H, W, 3]
    code: np.ndarray | None = None  # a saved latent, when the input is a .npy
    photo: np.ndarray | None = None  # the full original photo (for paste-back)
    face: Any = None  # align.Face when aligned
    face_index: int | None = None
    sidecar: dict[str, Any] | None = None  # alignment read from a latent's sidecar


class Job(Protocol):
    accepts_latents: bool

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        """The files this item will produce (checked for existence before any work)."""

    def process(self, item: Item, targets: dict[str, Path], overwrite: bool) -> None:
        """Compute and write the item's outputs into `targets`."""


def failed_records(inputs: list[Path], message: str) -> list[Record]:
    """Every input failed for the same reason (e.g. the model did not load)."""
    return [Record(str(p), error=message) for p in inputs]


def sidecar_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.align.json"


def run_job(
    inputs: list[Path], job: Job, options: RunOptions, emit: Callable[[Record], None], aligner: Any = None
) -> Summary:
    summary = Summary()
    start = time.perf_counter()
    for path, stem in zip(inputs, output_stems(inputs)):
        record = Record(str(path))
        try:
            items = list(_items(path, stem, job, options, aligner, record))
            planned = [(item, _all_targets(job, item, options)) for item in items]
            if not options.overwrite:
                for _, targets in planned:
                    taken = [p for p in targets.values() if p.exists()]
                    if taken:
                        raise InputError(f"{taken[0]}: exists (pass --overwrite to replace it)")
            with _all_or_nothing() as written:
                for item, targets in planned:
                    _write_alignment(item, targets, options, written)
                    job.process(item, targets, options.overwrite)
                    written.extend(targets.values())
                    record.outputs.update({item.prefix + k: str(v) for k, v in targets.items()})
            record.ok = True
            summary.done += 1
        except StyleCliError as exc:
            record.error = str(exc)
            record.outputs = {}
            summary.failed += 1
        except OSError as exc:  # disk full, permissions: this input fails, the batch goes on
            record.error = f"{path}: could not write the outputs to {options.out_dir} ({exc.strerror or exc})"
            record.outputs = {}
            summary.failed += 1
        emit(record)
    summary.seconds = time.perf_counter() - start
    return summary


def _all_targets(job: Job, item: Item, options: RunOptions) -> dict[str, Path]:
    targets = dict(job.targets(item, options.out_dir))
    if item.face is not None:
        targets["aligned"] = options.out_dir / f"{item.stem}_aligned.png"
        targets["alignment"] = sidecar_path(options.out_dir, item.stem)
    return targets


def _write_alignment(item: Item, targets: dict[str, Path], options: RunOptions, written: list[Path]) -> None:
    if item.face is None:
        return
    from stylecli.align import write_sidecar

    h, w = item.photo.shape[:2]
    written.append(write_png(item.pixels, targets["aligned"], options.overwrite))
    written.append(write_sidecar(targets["alignment"], item.source, (w, h), item.face_index, item.face,
                                 options.overwrite))


def _items(path: Path, stem: str, job: Job, options: RunOptions, aligner: Any, record: Record) -> Iterator[Item]:
    if path.suffix.lower() == ".npy":
        if not job.accepts_latents:
            raise InputError(f"{path}: a latent file; this command needs an image")
        yield _latent_item(path, stem)
        return
    loaded = read_image(path, options.max_pixels)
    record.notes = loaded.notes
    if not options.align:
        yield Item(path, stem, "", pixels=loaded.pixels, photo=loaded.pixels)
        return
    from stylecli.align import align_crop, select_faces

    faces = aligner.detect(loaded.pixels, options.detector_upsample)
    chosen = select_faces(faces, options.faces, path)
    suffixed = options.faces != "largest"
    for index, face in chosen:
        record.faces.append({"index": index, **face.to_dict()})
        yield Item(
            path,
            f"{stem}_face{index}" if suffixed else stem,
            f"face{index}." if suffixed else "",
            pixels=align_crop(loaded.pixels, face.quad),
            photo=loaded.pixels,
            face=face,
            face_index=index,
        )


class _TakesAnything:
    accepts_latents = True


def single_item(path: Path, options: RunOptions, aligner: Any = None) -> Item:
    """The largest face of one input, or its saved latent: for commands that take a single input."""
    from dataclasses import replace

    largest = replace(options, faces="largest")
    return next(_items(Path(path), Path(path).stem, _TakesAnything(), largest, aligner, Record(str(path))))


def _latent_item(path: Path, stem: str) -> Item:
    from stylecli.images import read_latent

    item = Item(path, stem, "", code=read_latent(path))
    side = sidecar_path(path.parent, path.stem)
    if side.is_file():
        from stylecli.align import read_sidecar

        item.sidecar = read_sidecar(side)
    return item


@contextlib.contextmanager
def _all_or_nothing():
    """Collect the paths written for one input; if a later step fails, remove the earlier ones."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
