"""Running a job over many inputs: prepare inputs ahead in worker threads, run the model on batches that span
inputs, write each input's outputs all-or-nothing, and emit one record per input, in input order.

The runner knows nothing about faces or models: a `Job` prepares one input into a `Task` (the files it will
write, how many units of model work it brings), computes results for a batch of tasks, and writes one task.

One bad input never stops the others; an error that no input can fix (errors.ends_run: exit 2 or 3, e.g. a
direction file or a download that only fails when first used) stops the run: the inputs before it are finished,
the one in flight leaves no outputs, and the error propagates to be said once. An interrupt (Ctrl-C, SIGTERM)
abandons the batch in flight: files are written atomically and an input's partial set of outputs is removed,
so a re-run with --skip-existing resumes exactly.

Shared outputs: some files depend only on the input, not on the command (a face's aligned crop and its
alignment sidecar, written alike by align, invert and edit). A task names them in `Task.shared` with a test of
whether an existing file equals what this run would write; an existing one that does is reused (neither
rewritten nor refused nor ever removed), so a second command into the same folder goes on; one that differs
is refused like any existing output. --overwrite rewrites them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stylecli.errors import InputError, StyleCliError, ends_run
from stylecli.files.atomic import is_complete
from stylecli.naming import output_stems


@dataclass
class Record:
    """What happened to one input; `--json` prints exactly this (`details` merged into the top level)."""

    input: str
    ok: bool = False
    status: str = "failed"  # done | skipped | failed
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # job-specific fields, e.g. the faces found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["details"]
        data.update(self.details)
        return data


@dataclass
class Summary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    units: int = 0  # units of model work done: what `unit_name` names (faces, images, training steps)
    seconds: float = 0.0
    interrupted: bool = False
    unit_name: str = "units"  # set by the job or command, e.g. "faces"; the rate reads "N faces/s"

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0

    @property
    def units_per_second(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (f"done {self.done}, skipped {self.skipped}, failed {self.failed} of {self.total} in "
                f"{self.seconds:.1f}s ({self.units_per_second:.2f} {self.unit_name}/s)")
        return text + (", interrupted" if self.interrupted else "")


@dataclass
class RunOptions:
    """How to run a batch (what to compute is the job's business)."""

    out_dir: Path = Path(".")
    overwrite: bool = False
    skip_existing: bool = False
    batch_size: int = 1  # units of model work per job.compute call
    workers: int = 2


@dataclass
class Task:
    """One input, prepared by a job: every file it will write, and the job's own data for compute / write."""

    source: Path
    outputs: dict[str, Path]  # record key -> file; all are written, or none stay
    units: int = 1  # units of model work (e.g. faces) it adds to a batch
    data: Any = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # extra record fields
    # outputs that depend only on the input (not on the command): record key -> whether the existing file at
    # that path equals what this task would write there (then it is reused: `reused` gets its key)
    shared: dict[str, Callable[[Path], bool]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)  # keys of shared outputs found in place: the job skips them

    def writes(self, key: str) -> bool:
        """Whether the job writes output `key` (False for a shared file reused as it is)."""
        return key not in self.reused


class Job(Protocol):
    """What a command does to each input. prepare runs in worker threads; compute and write in the main one."""

    default_batch_size: int
    unit_name: str  # what a task's units are, for the rate in progress and the summary (e.g. "faces")

    def expected_outputs(self, source: Path, stem: str, out_dir: Path) -> Mapping[str, Path] | None:
        """For --skip-existing: the files a finished earlier run left, by record key, found without reading the
        input (None when that cannot be known: the input then runs). A skipped input's record lists them."""

    def prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        """Read the input (raise InputError for a bad one) and name its outputs, under unique `stem`."""

    def compute(self, tasks: list[Task]) -> list[Any]:
        """The model work for a batch of tasks (of several inputs), one result per task."""

    def write(self, task: Task, result: Any, overwrite: bool) -> None:
        """Write every file of task.outputs but the reused ones (`task.writes(key)` is False)."""


@dataclass
class _Prepared:
    path: Path
    record: Record
    task: Task | None = None
    error: str | None = None
    skipped: bool = False
    fatal: StyleCliError | None = None  # an error that ends the whole run (ends_run), raised when reached


def run_job(
    inputs: list[Path],
    job: Job,
    options: RunOptions,
    emit: Callable[[Record], None],
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    with _sigterm_as_interrupt():
        return _run(inputs, job, options, emit, progress)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A kill (SIGTERM) ends the run like Ctrl-C: the batch in flight is dropped, the summary still comes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(inputs: list[Path], job: Job, options: RunOptions, emit: Callable[[Record], None],
         progress: Callable[[Summary], None] | None) -> Summary:
    summary = Summary(total=len(inputs), unit_name=job.unit_name)
    start = time.perf_counter()
    stems = output_stems(inputs)

    def prepare(index: int) -> _Prepared:
        return _prepare(inputs[index], stems[index], job, options)

    pool = ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="stylecli-read")
    try:
        pending: list[_Prepared] = []
        units = 0
        for prepared in _ordered(pool, prepare, len(inputs), ahead=max(2 * options.batch_size, options.workers)):
            if prepared.fatal is not None:  # no input can do better: finish the ones before it, then stop
                _finish(pending, job, options, summary, emit)
                raise prepared.fatal
            pending.append(prepared)
            units += prepared.task.units if prepared.task else 0
            if units >= options.batch_size:
                _finish(pending, job, options, summary, emit)
                pending, units = [], 0
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


def _prepare(path: Path, stem: str, job: Job, options: RunOptions) -> _Prepared:
    prepared = _Prepared(path, Record(str(path)))
    try:
        if options.skip_existing:
            expected = job.expected_outputs(path, stem, options.out_dir)
            if expected and all(is_complete(p) for p in expected.values()):  # an empty leftover is not done
                prepared.skipped = True
                prepared.record.outputs = {k: str(v) for k, v in expected.items()}
                return prepared
        task = job.prepare(path, stem, options.out_dir)
        prepared.record.notes = task.notes
        prepared.record.details = task.details
        if not options.overwrite:
            task.reused = {k for k, same in task.shared.items() if is_complete(task.outputs[k])
                           and same(task.outputs[k])}
        if not (options.overwrite or options.skip_existing):  # a resume redoes an input's partial outputs
            taken = [p for k, p in task.outputs.items() if k not in task.reused and p.exists()]
            if taken:
                raise InputError(f"{taken[0]}: exists (pass --overwrite to replace it, or --skip-existing)")
        prepared.task = task
    except StyleCliError as exc:
        if ends_run(exc):
            prepared.fatal = exc
        else:
            prepared.error = str(exc)
    return prepared


def _finish(pending: list[_Prepared], job: Job, options: RunOptions, summary: Summary,
            emit: Callable[[Record], None]) -> None:
    """Run the model on the tasks of the pending inputs at once, then write and report each input."""
    ready = [p for p in pending if p.task is not None]
    results: dict[int, Any] = {}
    if ready:
        try:
            results = dict(zip((id(p) for p in ready), job.compute([p.task for p in ready])))
        except StyleCliError as exc:
            if ends_run(exc):
                raise
            # One input spoiled the batch: find it input by input.
            for p in ready:
                try:
                    results[id(p)] = job.compute([p.task])[0]
                except StyleCliError as exc:
                    if ends_run(exc):
                        raise
                    p.error = str(exc)
    for p in pending:
        record = p.record
        if p.skipped:
            record.ok, record.status = True, "skipped"
            summary.skipped += 1
        elif p.error is None and p.task is not None:
            try:
                _write(p.task, job, results[id(p)], options.overwrite or options.skip_existing)
                record.outputs = {k: str(v) for k, v in p.task.outputs.items()}
                record.ok, record.status = True, "done"
                summary.done += 1
                summary.units += p.task.units
            except StyleCliError as exc:
                if ends_run(exc):
                    raise
                p.error = str(exc)
            except OSError as exc:  # disk full, permissions: this input fails, the batch goes on
                p.error = f"{p.path}: could not write the outputs to {options.out_dir} ({exc.strerror or exc})"
        if p.error is not None:
            record.error, record.outputs, record.status = p.error, {}, "failed"
            summary.failed += 1
        emit(record)


def _write(task: Task, job: Job, result: Any, overwrite: bool) -> None:
    """All or nothing: if any file of the task fails, the files it created are removed (never one that was
    there before it started, a reused shared file included)."""
    existed = {p for k, p in task.outputs.items() if p.exists() or k in task.reused}
    try:
        job.write(task, result, overwrite)
    except BaseException:
        for p in task.outputs.values():
            if p not in existed:
                with contextlib.suppress(OSError):
                    p.unlink()
        raise
