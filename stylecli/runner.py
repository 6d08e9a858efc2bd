"""Running a job over many inputs: read and align in background threads, run the model on batches of faces,
write each input's outputs all-or-nothing, and emit one record per input, in input order.

One bad input never stops the others. An interrupt (Ctrl-C, SIGTERM) abandons the batch in flight: files are
written atomically and an input's partial set of outputs is removed, so a re-run with --skip-existing
resumes exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
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
    status: str = "failed"  # done | skipped | failed
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
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    faces: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0

    @property
    def images_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (f"done {self.done}, skipped {self.skipped}, failed {self.failed} of {self.total} in "
                f"{self.seconds:.1f}s ({self.images_per_second:.2f} faces/s)")
        return text + (", interrupted" if self.interrupted else "")


@dataclass
class RunOptions:
    out_dir: Path = Path(".")
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    align: bool = True
    faces: str = "largest"  # largest | all | index
    detector_upsample: int | None = None
    skip_existing: bool = False
    batch_size: int = 1
    workers: int = 2


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
    notes: tuple[str, ...]  # notes every record of the run carries (e.g. what --keep removed from an edit)

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        """The files this item will produce (checked for existence before any work)."""

    def compute(self, items: list[Item]) -> list[Any]:
        """The model work for a batch of items, one result per item."""

    def write(self, item: Item, result: Any, targets: dict[str, Path], overwrite: bool) -> None:
        """Write one item's outputs into `targets`."""

    # Optional, for outputs that combine every face of one input (e.g. one photo with all faces edited):
    #   input_targets(items, stem, out_dir) -> dict[str, Path]
    #   write_input(items, results, targets, overwrite) -> None


@dataclass
class _Prepared:
    """An input after reading and aligning (in a worker thread)."""

    path: Path
    record: Record
    items: list[tuple[Item, dict[str, Path]]] = field(default_factory=list)
    targets: dict[str, Path] = field(default_factory=dict)  # outputs of the whole input (job.input_targets)
    error: str | None = None
    skipped: bool = False


def failed_records(inputs: list[Path], message: str) -> list[Record]:
    """Every input failed for the same reason (e.g. the model did not load)."""
    return [Record(str(p), error=message) for p in inputs]


def sidecar_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.align.json"


def run_job(
    inputs: list[Path],
    job: Job,
    options: RunOptions,
    emit: Callable[[Record], None],
    aligner: Any = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    summary = Summary(total=len(inputs))
    start = time.perf_counter()
    stems = output_stems(inputs)

    def prepare(index: int) -> _Prepared:
        return _prepare(inputs[index], stems[index], job, options, aligner)

    pool = ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="stylecli-read")
    try:
        pending: list[_Prepared] = []
        n_items = 0
        for prepared in _ordered(pool, prepare, len(inputs), ahead=max(2 * options.batch_size, options.workers)):
            pending.append(prepared)
            n_items += len(prepared.items)
            if n_items >= options.batch_size:
                _finish(pending, job, options, summary, emit)
                pending, n_items = [], 0
                summary.seconds = time.perf_counter() - start
                if progress:
                    progress(summary)
        _finish(pending, job, options, summary, emit)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    summary.seconds = time.perf_counter() - start
    if progress:
        progress(summary)
    return summary


def _ordered(pool: ThreadPoolExecutor, fn: Callable[[int], _Prepared], n: int, ahead: int) -> Iterator[_Prepared]:
    """fn(0..n-1) in order, computed up to `ahead` inputs in advance on the pool."""
    futures = {}
    for i in range(n):
        for j in range(i, min(n, i + ahead + 1)):
            if j not in futures:
                futures[j] = pool.submit(fn, j)
        yield futures.pop(i).result()


def _prepare(path: Path, stem: str, job: Job, options: RunOptions, aligner: Any) -> _Prepared:
    prepared = _Prepared(path, Record(str(path), notes=list(job.notes)))
    try:
        if options.skip_existing and _all_outputs_exist(path, stem, job, options):
            prepared.skipped = True
            return prepared
        items = list(_items(path, stem, job, options, aligner, prepared.record))
        prepared.items = [(item, _all_targets(job, item, options)) for item in items]
        if hasattr(job, "input_targets"):
            prepared.targets = job.input_targets(items, stem, options.out_dir)
        if not options.overwrite:
            for targets in [t for _, t in prepared.items] + [prepared.targets]:
                taken = [p for p in targets.values() if p.exists()]
                if taken:
                    raise InputError(f"{taken[0]}: exists (pass --overwrite to replace it, or --skip-existing)")
    except StyleCliError as exc:
        prepared.error = str(exc)
        prepared.items = []
    return prepared


def _finish(pending: list[_Prepared], job: Job, options: RunOptions, summary: Summary,
            emit: Callable[[Record], None]) -> None:
    """Run the model on every face of the pending inputs at once, then write and report each input."""
    ready = [p for p in pending if p.error is None and not p.skipped]
    items = [item for p in ready for item, _ in p.items]
    results: dict[int, Any] = {}
    if items:
        try:
            for item, result in zip(items, job.compute(items)):
                results[id(item)] = result
        except StyleCliError:
            # One input spoiled the batch (e.g. a latent of the wrong model): find it input by input.
            for p in ready:
                try:
                    for (item, _), result in zip(p.items, job.compute([i for i, _ in p.items])):
                        results[id(item)] = result
                except StyleCliError as exc:
                    p.error = str(exc)
    for p in pending:
        record = p.record
        if p.skipped:
            record.ok, record.status = True, "skipped"
            summary.skipped += 1
        elif p.error is None:
            try:
                _write_input(p, job, results, options)
                record.ok, record.status = True, "done"
                summary.done += 1
                summary.faces += len(p.items)
            except StyleCliError as exc:
                p.error = str(exc)
            except OSError as exc:  # disk full, permissions: this input fails, the batch goes on
                p.error = f"{p.path}: could not write the outputs to {options.out_dir} ({exc.strerror or exc})"
        if p.error is not None:
            record.error, record.outputs, record.status = p.error, {}, "failed"
            summary.failed += 1
        emit(record)


def _write_input(p: _Prepared, job: Job, results: dict[int, Any], options: RunOptions) -> None:
    with _all_or_nothing() as written:
        for item, targets in p.items:
            _write_alignment(item, targets, options, written)
            job.write(item, results[id(item)], targets, options.overwrite)
            written.extend(targets.values())
            p.record.outputs.update({item.prefix + k: str(v) for k, v in targets.items()})
        if p.targets:
            items = [item for item, _ in p.items]
            job.write_input(items, [results[id(item)] for item in items], p.targets, options.overwrite)
            written.extend(p.targets.values())
            p.record.outputs.update({k: str(v) for k, v in p.targets.items()})


def _all_targets(job: Job, item: Item, options: RunOptions) -> dict[str, Path]:
    targets = dict(job.targets(item, options.out_dir))
    if item.face is not None:
        targets["aligned"] = options.out_dir / f"{item.stem}_aligned.png"
        targets["alignment"] = sidecar_path(options.out_dir, item.stem)
    return targets


def _all_outputs_exist(path: Path, stem: str, job: Job, options: RunOptions) -> bool:
    """Whether a previous run already wrote every output of this input (decided without reading it)."""
    aligned = options.align and path.suffix.lower() != ".npy"
    if not aligned or options.faces == "largest":
        stems = [stem]
    elif options.faces == "all":
        stems = sorted(p.name[: -len(".align.json")] for p in options.out_dir.glob(f"{stem}_face*.align.json"))
    else:
        stems = [f"{stem}_face{options.faces}"]
    if not stems:
        return False
    marker = object() if aligned else None  # stands in for the face: the targets then include the crop files
    suffixed = aligned and options.faces != "largest"
    items = [Item(path, s, s[len(stem) + 1 :] + "." if suffixed else "", face=marker,
                  sidecar={} if not aligned else None) for s in stems]
    targets = [t for item in items for t in _all_targets(job, item, options).values()]
    if hasattr(job, "input_targets"):
        targets += job.input_targets(items, stem, options.out_dir).values()
    return all(t.exists() for t in targets)


def _write_alignment(item: Item, targets: dict[str, Path], options: RunOptions, written: list[Path]) -> None:
    if item.face is None:
        return
    from stylecli.faces import write_sidecar

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
    record.notes += loaded.notes
    if not options.align:
        yield Item(path, stem, "", pixels=loaded.pixels, photo=loaded.pixels)
        return
    from stylecli.faces import align_crop, select_faces

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
    notes: tuple[str, ...] = ()


def single_item(path: Path, options: RunOptions, aligner: Any = None) -> Item:
    """The largest face of one input, or its saved latent: for commands that take a single input."""
    largest = replace(options, faces="largest")
    return next(_items(Path(path), Path(path).stem, _TakesAnything(), largest, aligner, Record(str(path))))


def _latent_item(path: Path, stem: str) -> Item:
    from stylecli.images import read_latent

    item = Item(path, stem, "", code=read_latent(path))
    side = sidecar_path(path.parent, path.stem)
    if side.is_file():
        from stylecli.faces import read_sidecar

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
