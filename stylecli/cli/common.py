"""Options, errors and the batch driver shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from stylecli.errors import error_line, note_line


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def print_rows(rows: list[dict], columns: dict[str, Callable[[dict], str]], as_json: bool = False,
               title: str | None = None, stderr: bool = False) -> None:
    """Rows as one JSON object per line (--json); on a terminal a table whose first column (the name a user
    types) is never cut (the others wrap); in pipes and files plain tab-separated lines, header first."""
    if as_json:
        for row in rows:
            print_json(row)
        return
    stream = sys.stderr if stderr else sys.stdout
    cells = [[str(cell(row)) for cell in columns.values()] for row in rows]
    if not stream.isatty():
        if title:
            print(f"# {title}", file=stream)
        for line in [list(columns), *cells]:
            print("\t".join(c.replace("\t", " ").replace("\n", " ") for c in line), file=stream)
        stream.flush()
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream)
    # the narrowest each column may get: all of the first (the name a user types), else its longest word
    texts = [[name, *(c[i] for c in cells)] for i, name in enumerate(columns)]
    widths = [max(len(t) for t in texts[0]), *(max(len(w) for t in col for w in t.split() or [""])
                                               for col in texts[1:])]
    room = console.width - 3 * len(widths) - 1  # less the borders and padding
    if sum(widths) <= room:  # a table whose columns wrap only between words: their widths fixed here (rich's own
        # fitting may narrow a column below its longest word, and fold a URL mid-word)
        widths = _share_width(widths, [max(len(t) for t in col) for col in texts], room)
        table = Table(title=title)
        for i, name in enumerate(columns):
            table.add_column(name, no_wrap=i == 0, width=widths[i], overflow="fold")
        for line in cells:
            table.add_row(*line)
        console.print(table)
        return
    for line in cells:  # too narrow for a table: one block per row, each value whole on its own line
        print(line[0], file=stream)
        for name, value in zip(list(columns)[1:], line[1:]):
            print(f"  {name}: {value}", file=stream)
    stream.flush()


def _share_width(least: list[int], most: list[int], room: int) -> list[int]:
    """Column widths from each one's least (its longest word) towards its most (its longest cell) within `room`:
    the space left over goes to the columns that need least first (short cells stay on one line)."""
    widths, spare = list(least), room - sum(least)
    for i in sorted(range(len(widths)), key=lambda i: most[i] - widths[i]):
        give = max(0, min(most[i] - widths[i], spare))
        widths[i] += give
        spare -= give
    return widths


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say the error and return the Exit to raise (for errors the command itself finds; the library's errors
    end the command through the one mapping in cli/__init__)."""
    typer.echo(error_line(message), err=True)
    return typer.Exit(code)


InputsArg = Annotated[
    list[str],
    typer.Argument(
        help="Image files, folders (searched recursively) or '-' to read paths from stdin.", show_default=False,
        metavar="INPUT",
    ),
]
OutDirOpt = Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the outputs.")]


def one_model(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """--checkpoint and --model both typed on one command line: a usage error (exit 2), not one silently ignored.
    The callback of both options; whichever click processes second sees the first (a defaulted --model is not
    typed)."""
    source = ctx.get_parameter_source(param.name)
    if value is not None and getattr(source, "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP"):
        typed = ctx.meta.setdefault(("stylecli.model", id(ctx)), {})
        typed[param.opts[0]] = value
        if len(typed) == 2:
            from stylecli.cli.help_text import ClickUsageError

            raise ClickUsageError(f"--checkpoint {typed['--checkpoint']} and --model {typed['--model']}: give one, not "
                                  "both (--checkpoint a local file, --model a registry name)", ctx)
    return value


CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", callback=one_model,
                 help="A local checkpoint (.pt: e4e, pSp, ReStyle or HyperStyle) instead of --model."),
]
StepsOpt = Annotated[
    int | None,
    typer.Option("--steps", min=1, help="ReStyle / HyperStyle: refinement passes (default: the model's, 5)."),
]
WEncoderOpt = Annotated[
    Path | None,
    typer.Option("--w-encoder", help="HyperStyle: its W encoder file (default: the registry's faces_w_encoder)."),
]
ModelOpt = Annotated[str, typer.Option("--model", callback=one_model,
                                       help="Registry model (see `stylecli weights list`).")]
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
    int, typer.Option("--max-pixels", min=1, help="Refuse images larger than this (decompression-bomb guard).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")]


SkipOpt = Annotated[
    bool, typer.Option("--skip-existing", help="Skip inputs whose outputs all exist (resume a batch).")
]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", metavar="K/N", help="K/N: take only shard K of N (1-based), split by path hash."),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, metavar="N",
                              help="Faces per model batch (default: 8 on CUDA, 4 on MPS, 1 on CPUs).")
]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Threads reading and aligning ahead.")]
NulOpt = Annotated[bool, typer.Option("-0", "--null", help="Paths on stdin ('-') are NUL-separated.")]


BlendOpt = Annotated[
    str, typer.Option("--blend", help="Paste-back blending: feather (a soft mask) or seamless (OpenCV Poisson).")
]


def print_json(obj: Any) -> None:
    """The one JSON printer: one document per line on stdout, flushed (pipes see each record at once)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def check_output(path: Path | None, overwrite: bool, option: str) -> None:
    """An output file named by an option: refuse to replace it without --overwrite, before any work."""
    from stylecli.errors import UsageError

    if path is not None and path.exists() and not overwrite:
        raise UsageError(f"{option} {path}: exists (pass --overwrite to replace it)")
    if path is not None and path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if path is not None:
        check_out_dir(path.parent, f"{option} {path}")


def check_out_dir(out_dir: Path, label: str | None = None) -> None:
    """The output folder can hold files: checked once, before any model loads (it is created on first write).
    `label` names the option in the message (default `-o OUT_DIR`)."""

    from stylecli.errors import UsageError
    from stylecli.files.atomic import unwritable_folder

    problem = unwritable_folder(out_dir)
    if problem is not None:
        fix = "choose another folder with -o" if label is None else "choose another place"
        raise UsageError(f"{label or f'-o {out_dir}'}: {problem} ({fix})")


def registry_entry(name: str, option: str | None = None):
    """A weights registry entry; an unknown name is a usage error (naming the option that gave it)."""
    from stylecli.errors import UsageError
    from stylecli.registry import weights

    try:
        return weights.get_entry(name)
    except weights.WeightsError as exc:
        raise UsageError(f"{option} {name}: {exc}" if option else str(exc)) from None


def unreadable_inputs(paths: list[Path]) -> None:
    """For commands of a fixed few inputs: the first that cannot be read ends the command (exit 1)."""
    from stylecli.batch.inputs import unreadable
    from stylecli.errors import InputError

    for p in paths:
        problem = unreadable(p)
        if problem:
            raise InputError(problem)


def run_options(out_dir: Path, overwrite: bool, skip_existing: bool = False, batch_size: int | None = None,
                workers: int = 2):
    from stylecli.batch.runner import RunOptions

    if overwrite and skip_existing:
        raise typer.BadParameter("--overwrite and --skip-existing contradict each other: pick one",
                                 param_hint="--overwrite")
    return RunOptions(out_dir, overwrite, skip_existing, batch_size or 0, workers)


def face_options(no_align: bool, faces: str):
    from stylecli.batch.jobs import FaceOptions
    from stylecli.faces import parse_faces_option

    try:
        faces = parse_faces_option(faces)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faces") from None
    if no_align and faces != "largest":
        raise typer.BadParameter(f"--faces {faces} chooses among detected faces; --no-align detects none",
                                 param_hint="--faces")
    return FaceOptions(not no_align, faces)


def execute_batch(paths: list[Path], make_job: Callable[[], Any], options, as_json: bool, quiet: bool) -> None:
    """Check the inputs, load what the job needs, run it over the inputs, print records and the summary,
    exit 0/1/130. Inputs that cannot be read fail at once, before any model is resolved or downloaded.
    An error while the job is made (a model or direction that cannot be resolved or downloaded, a missing
    package) or one that ends the run midway (errors.ends_run) stops the progress and ends the command in one
    line, its class's exit code (cli/__init__ says it); no input is failed for it."""
    from stylecli.batch.inputs import unreadable
    from stylecli.batch.progress import Reporter
    from stylecli.batch.runner import Record, run_job
    from stylecli.errors import StyleCliError

    reporter = Reporter(len(paths), quiet)

    def emit(record: Record) -> None:
        if as_json:
            print_json(record.to_dict())
        reporter.record(record)

    try:
        check_out_dir(options.out_dir)
    except StyleCliError:
        reporter.stop()
        raise
    problems = [unreadable(p) for p in paths]
    if all(problems):  # nothing to do: say so without loading (or downloading) a model
        for p, problem in zip(paths, problems):
            emit(Record(str(p), error=problem))
        reporter.stop()
        raise typer.Exit(1)
    try:
        job = make_job()
        if not options.batch_size:
            options.batch_size = job.default_batch_size
        summary = run_job(paths, job, options, emit, reporter.update)
    except StyleCliError:
        reporter.stop()
        raise
    reporter.close(summary)
    raise typer.Exit(summary.exit_code)


def expand_paths(inputs: list[str], shard: str | None = None, null: bool = False, latents: bool = False,
                 quiet: bool = False) -> list[Path]:
    """latents: folders give their .npy latents too (edit), said in a note when they replace images."""
    from stylecli.batch.inputs import expand_inputs, parse_shard, take_shard
    from stylecli.files.images import IMAGE_EXTENSIONS

    try:
        k, n = parse_shard(shard) if shard else (1, 1)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    notes: list[str] = []
    paths = expand_inputs(inputs, null_separated=null, latents=latents, notes=notes)
    if not paths:
        raise fail(f"no input images in {', '.join(inputs)} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                   f"and .npy {'latents' if latents else 'given by name'})", 2)
    for note in notes if not quiet else []:
        say_note(note)
    if shard:
        paths, total = take_shard(paths, k, n), len(paths)
        if not paths:  # an array job's shard may well get nothing: not an error
            which = ("the 1 input falls in another shard" if total == 1
                     else f"none of the {total} inputs falls in this shard")
            typer.echo(f"stylecli: --shard {shard}: {which}; nothing to do", err=True)
            raise typer.Exit(0)
    return paths


def make_editor(checkpoint: Path | None, model: str, device: str, batch_size: int | None = None,
                precision: str = "fp32", quiet: bool = False, **options: Any):
    """The FaceEditor of --checkpoint or --model (options: max_pixels, detector_upsample, steps, w_encoder)."""
    from stylecli.pipeline.editor import FaceEditor, resolve_device
    from stylecli.registry.weights import quiet_downloads

    quiet_downloads(quiet)  # -q: no download note or progress bar either
    dev = resolve_device(device)
    if checkpoint is None:
        return FaceEditor.from_pretrained(model, dev, batch_size=batch_size, precision=precision, **options)
    return FaceEditor.from_checkpoint(checkpoint, dev, batch_size=batch_size, precision=precision,
                                      note=None if quiet else say_note, **options)


def say_note(message: str) -> None:
    typer.echo(note_line(message), err=True)


def photo_editor(max_pixels: int, detector_upsample: int | None):
    """A FaceEditor without models: the photo stages only (align)."""
    from stylecli.pipeline.editor import FaceEditor

    return FaceEditor(None, None, "cpu", max_pixels=max_pixels, detector_upsample=detector_upsample)

