"""Options, errors and the batch driver shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def print_rows(rows: list[dict], columns: dict[str, Callable[[dict], str]], as_json: bool = False,
               title: str | None = None, stderr: bool = False, whole: tuple[str, ...] = ()) -> None:
    """Rows as one JSON object per line (--json), or as a table whose cells `columns` derive from each row.
    Columns named in `whole` are never wrapped or cut; with `whole`, the others wrap rather than being cut."""
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(*(Column(name, no_wrap=name in whole, overflow="fold" if whole else "ellipsis")
                    for name in columns), title=title)
    for row in rows:
        table.add_row(*(cell(row) for cell in columns.values()))
    console = Console(stderr=stderr)
    if whole and not console.is_terminal:  # pipes and logs: one line per row rather than an 80-column squeeze
        console.width = 200
    console.print(table)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"stylecli: error: {message}", err=True)
    return typer.Exit(code)


InputsArg = Annotated[
    list[str],
    typer.Argument(
        help="Image files, folders (searched recursively) or '-' to read paths from stdin.", show_default=False
    ),
]
OutDirOpt = Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the outputs.")]
CheckpointOpt = Annotated[
    Path | None, typer.Option("--checkpoint", help="A local e4e/pSp checkpoint (.pt) instead of --model.")
]
ModelOpt = Annotated[str, typer.Option("--model", help="Registry model (see `stylecli weights list`).")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run: auto picks CUDA, then MPS, then CPU.")]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


PrecisionOpt = Annotated[
    Precision,
    typer.Option("--precision", help="fp32 (exact), or bf16 / fp16 autocast: faster on GPUs and AMX CPUs, "
                 "slightly different pixels."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON record per input on stdout; messages go to stderr.")]


NoAlignOpt = Annotated[
    bool, typer.Option("--no-align", help="Inputs are already aligned face crops: skip detection, only resize.")
]
FacesOpt = Annotated[
    str, typer.Option("--faces", help="Which faces: largest, all, or an index (0 = largest).")
]
UpsampleOpt = Annotated[
    int | None,
    typer.Option("--detector-upsample", min=0, max=4,
                 help="Upsample the photo N times before detection (small faces). Default: 0, then 1 if none found."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
MaxPixelsOpt = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images larger than this (decompression-bomb guard).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")]


SkipOpt = Annotated[
    bool, typer.Option("--skip-existing", help="Skip inputs whose outputs all exist (resume a batch).")
]
ShardOpt = Annotated[
    str | None, typer.Option("--shard", help="K/N: take only shard K of N (1-based), split by path hash.")
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Faces per model batch (default: 8 on CUDA, 4 otherwise).")
]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Threads reading and aligning ahead.")]
NulOpt = Annotated[bool, typer.Option("-0", "--null", help="Paths on stdin ('-') are NUL-separated.")]


def run_options(out_dir: Path, overwrite: bool, max_pixels: int, no_align: bool, faces: str,
                 upsample: int | None, skip_existing: bool = False, batch_size: int | None = None,
                 workers: int = 2):
    from stylecli.faces import parse_faces_option
    from stylecli.runner import RunOptions

    try:
        faces = parse_faces_option(faces)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faces") from None
    return RunOptions(out_dir, overwrite, max_pixels, not no_align, faces, upsample, skip_existing,
                      batch_size or 0, workers)


def execute_batch(paths: list[Path], make_job, options, as_json: bool, quiet: bool) -> None:
    """Load what the job needs, run it over the inputs, print records and the summary, exit 0/1/130."""
    import signal

    from stylecli.errors import StyleCliError
    from stylecli.progress import Reporter
    from stylecli.runner import Record, failed_records, run_job

    reporter = Reporter(len(paths), quiet)

    def emit(record: Record) -> None:
        if as_json:
            sys.stdout.write(json.dumps(record.to_dict()) + "\n")
            sys.stdout.flush()
        reporter.record(record)

    try:
        aligner = None
        if options.align:
            from stylecli.faces import FaceAligner

            aligner = FaceAligner()
        job = make_job()
    except StyleCliError as exc:
        reporter.stop()
        if as_json:
            for record in failed_records(paths, str(exc)):
                sys.stdout.write(json.dumps(record.to_dict()) + "\n")
        raise fail(str(exc)) from None
    if not options.batch_size:
        options.batch_size = job.default_batch_size

    def on_term(signum, frame):  # a kill ends the run like Ctrl-C: clean, with a summary
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        summary = run_job(paths, job, options, emit, aligner, reporter.update)
    finally:
        signal.signal(signal.SIGTERM, previous)
    reporter.close(summary)
    raise typer.Exit(summary.exit_code)


def expand_paths(inputs: list[str], shard: str | None = None, null: bool = False) -> list[Path]:
    from stylecli.inputs import expand_inputs, parse_shard, take_shard

    paths = expand_inputs(inputs, null_separated=null)
    if shard:
        try:
            k, n = parse_shard(shard)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--shard") from None
        paths = take_shard(paths, k, n)
    elif not paths:
        raise fail("no input images found in the given paths", 2)
    return paths


def make_inverter(checkpoint: Path | None, model: str, device: str, batch_size: int | None = None,
              precision: str = "fp32"):
    from stylecli.pipeline import FaceEditor, resolve_device

    dev = resolve_device(device)
    if checkpoint is not None:
        return FaceEditor.from_checkpoint(checkpoint, dev, batch_size=batch_size, precision=precision)
    return FaceEditor.from_pretrained(model, dev, batch_size=batch_size, precision=precision)
