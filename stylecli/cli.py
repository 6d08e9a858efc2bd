"""The `stylecli` command: a thin Typer shell over the library (no model math here).

Heavy modules (torch, the models) are imported inside the commands so `stylecli --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from stylecli import __version__

app = typer.Typer(
    name="stylecli",
    help=(
        "Edit real face photos with StyleGAN2 and the e4e encoder.\n\n"
        "\b\nExamples:\n"
        "  stylecli invert photo.jpg -o out/ --json\n"
        "  stylecli align group.jpg --faces all -o aligned/\n"
        "  stylecli edit photo.jpg --direction age --strength 3 --paste-back\n"
        "  stylecli invert face.png --no-align --checkpoint e4e_ffhq_encode.pt\n"
        "  stylecli weights list"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no rich import, so `stylecli --help` stays instant
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
weights_app = typer.Typer(
    help="List, download, verify and import the model files stylecli uses (weights.toml).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"stylecli: error: {message}", err=True)
    return typer.Exit(code)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"stylecli {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool | None, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Edit real face photos with StyleGAN2 and the e4e encoder."""


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


def _run_options(out_dir: Path, overwrite: bool, max_pixels: int, no_align: bool, faces: str,
                 upsample: int | None, skip_existing: bool = False, batch_size: int | None = None,
                 workers: int = 2):
    from stylecli.align import parse_faces_option
    from stylecli.runner import RunOptions

    try:
        faces = parse_faces_option(faces)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faces") from None
    return RunOptions(out_dir, overwrite, max_pixels, not no_align, faces, upsample, skip_existing,
                      batch_size or 0, workers)


def _execute(paths: list[Path], make_job, options, as_json: bool, quiet: bool) -> None:
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
            from stylecli.align import FaceAligner

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


def _expand(inputs: list[str], shard: str | None = None, null: bool = False) -> list[Path]:
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


@app.command()
def invert(
    inputs: InputsArg,
    out_dir: OutDirOpt = Path("."),
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = "e4e_ffhq",
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.fp32,
    no_align: NoAlignOpt = False,
    faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = 100_000_000,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = 2,
    null: NulOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Invert photos into W+ latent codes and write the generator's reconstruction.

    Each face is found and aligned (FFHQ crop, 256x256) first, unless --no-align. For each input NAME.ext
    it writes NAME.npy (float32, n_styles x 512: the code the generator consumes), NAME_inversion.png
    (the full-resolution reconstruction), NAME_aligned.png and NAME.align.json (where the face was, for
    `edit --paste-back`). With --faces all or an index, names get _faceK (K = 0 for the largest face).

    \b
    Examples:
      stylecli invert photo.jpg -o out/ --json
      stylecli invert group.jpg --faces all -o out/
      stylecli invert crops/ --no-align --checkpoint e4e_ffhq_encode.pt -o out/

    Exit codes: 0 all inputs done, 1 some failed (the others are still done), 2 usage error.
    """
    options = _run_options(out_dir, overwrite, max_pixels, no_align, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    paths = _expand(inputs, shard, null)

    def make_job():
        from stylecli.jobs import InvertJob

        return InvertJob(_inverter(checkpoint, model, device.value, batch_size, precision.value))

    _execute(paths, make_job, options, as_json, quiet)


@app.command()
def align(
    inputs: InputsArg,
    out_dir: OutDirOpt = Path("."),
    faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = 100_000_000,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = 2,
    null: NulOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Find faces and write FFHQ-aligned 256x256 crops (NAME_aligned.png) and NAME.align.json.

    The JSON record lists each face's box, landmarks and crop quad in original-image pixels.

    \b
    Examples:
      stylecli align group.jpg --faces all -o aligned/ --json
      stylecli align shots/ -o aligned/
    """
    options = _run_options(out_dir, overwrite, max_pixels, False, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    paths = _expand(inputs, shard, null)

    def make_job():
        from stylecli.jobs import AlignJob

        return AlignJob()

    _execute(paths, make_job, options, as_json, quiet)


def _parse_sweep(spec: str) -> list[float]:
    try:
        start, stop, n = spec.split(":")
        count = int(n)
        if count < 2:
            raise ValueError
    except ValueError:
        raise typer.BadParameter("expected START:STOP:N with N >= 2, e.g. -4:4:9", param_hint="--sweep") from None
    import numpy as np

    return [round(float(v), 6) for v in np.linspace(float(start), float(stop), count)]


@app.command()
def edit(
    inputs: InputsArg,
    direction: Annotated[
        list[str],
        typer.Option("--direction", "-d", help="age, smile, pose, ganspace:NAME, ganspace:N, sefa:K or a .pt/.npy "
                     "file; repeat for several edits at once. `stylecli directions` lists them."),
    ],
    strength: Annotated[
        list[float] | None,
        typer.Option("--strength", "-s", help="Strength of the matching --direction (in order); default: the "
                     "direction's own (3 for InterFaceGAN and SeFa, the published value for GANSpace)."),
    ] = None,
    layers: Annotated[
        str | None, typer.Option("--layers", help="Only these W+ layers, e.g. 0-5 or 0-3,8 (inclusive).")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Render N strengths from START to STOP: START:STOP:N.")
    ] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Also write a labelled contact sheet.")] = False,
    gif: Annotated[bool, typer.Option("--gif", help="Also write an animation of the sweep.")] = False,
    paste_back: Annotated[
        bool, typer.Option("--paste-back", help="Also blend each edited face back into the original photo.")
    ] = False,
    save_latent: Annotated[bool, typer.Option("--save-latent", help="Also write each edited latent (.npy).")] = False,
    out_dir: OutDirOpt = Path("."),
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = "e4e_ffhq",
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.fp32,
    no_align: NoAlignOpt = False,
    faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = 100_000_000,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = 2,
    null: NulOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Edit photos (or saved latents) along semantic directions and render the results.

    Images are aligned and inverted first; a .npy latent written by `invert` is edited directly (no
    re-encoding; its .align.json makes --paste-back work). Outputs are named NAME_<direction><strength>.png,
    e.g. photo_age+3.png.

    \b
    Examples:
      stylecli edit photo.jpg --direction age --strength 3
      stylecli edit photo.jpg -d smile -s -2 -d pose -s 1.5 --paste-back
      stylecli edit out/photo.npy --direction ganspace:white_hair
      stylecli edit photo.jpg --direction age --sweep -4:4:9 --grid --gif
      stylecli edit photo.jpg --direction sefa:3 --layers 0-5 --strength 5
    """
    options = _run_options(out_dir, overwrite, max_pixels, no_align, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    strengths = list(strength or [])
    if len(strengths) > len(direction):
        raise typer.BadParameter("more --strength values than --direction values", param_hint="--strength")
    sweep_values = _parse_sweep(sweep) if sweep else None
    if sweep_values and len(direction) > 1:
        raise typer.BadParameter("--sweep takes a single --direction", param_hint="--sweep")
    if gif and not sweep_values:
        raise typer.BadParameter("--gif animates a --sweep", param_hint="--gif")
    paths = _expand(inputs, shard, null)

    def make_job():
        from stylecli.editing import parse_layers, resolve_edit
        from stylecli.jobs import EditJob, EditPlan

        inverter = _inverter(checkpoint, model, device.value, batch_size, precision.value)
        chosen = parse_layers(layers, inverter.n_styles)
        edits = [
            (resolve_edit(d, inverter.n_styles, inverter.model.decoder, chosen), strengths[i] if i < len(strengths)
             else None)
            for i, d in enumerate(direction)
        ]
        plan = EditPlan(edits, sweep_values, grid, gif, paste_back, save_latent)
        return EditJob(inverter, plan)

    _execute(paths, make_job, options, as_json, quiet)


@app.command()
def mix(
    first: Annotated[Path, typer.Argument(help="Image or latent giving the base code.", show_default=False)],
    second: Annotated[Path, typer.Argument(help="Image or latent giving the mixed-in layers.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output image (.png).")] = Path("mixed.png"),
    layers: Annotated[str, typer.Option("--layers", help="Layers taken from SECOND, e.g. 8-17.")] = "8-17",
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="1: copy; 0.5: halfway.")] = 1.0,
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = "e4e_ffhq",
    device: DeviceOpt = Device.auto,
    no_align: NoAlignOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Style mixing: FIRST's code with chosen layers taken from SECOND (coarse 0-3: pose and shape,
    middle 4-7: features, fine 8+: colours and texture).

    Example: stylecli mix a.jpg b.jpg --layers 8-17 -o mixed.png
    """
    from stylecli.errors import StyleCliError

    try:
        from stylecli.editing import parse_layers
        from stylecli.editing.mixing import mix as mix_codes
        from stylecli.images import write_png
        from stylecli.runner import RunOptions, single_item

        inverter = _inverter(checkpoint, model, device.value)
        chosen = parse_layers(layers, inverter.n_styles)
        options = RunOptions(align=not no_align)
        aligner = None
        if options.align and (first.suffix != ".npy" or second.suffix != ".npy"):
            from stylecli.align import FaceAligner

            aligner = FaceAligner()
        codes = [inverter.code_of(single_item(p, options, aligner)) for p in (first, second)]
        image = inverter.synthesize(mix_codes(codes[0], codes[1], chosen, alpha))[0]
        write_png(image, out, overwrite)
    except StyleCliError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{first} + {second} (layers {layers}) -> {out}", err=True)


@app.command()
def directions(
    model: ModelOpt = "e4e_ffhq",
    as_json: JsonOpt = False,
) -> None:
    """List the edit directions available for a model, with their meaning and typical range.

    Example: stylecli directions --model e4e_ffhq
    """
    from stylecli import weights
    from stylecli.editing.ganspace import NAMED_EDITS
    from stylecli.editing.resolve import INTERFACEGAN

    entry = weights.get_entry(model) if model in weights.load_registry() else None
    is_cars = entry is not None and "cars" in entry.name
    rows = []
    if not is_cars:
        for name, what in INTERFACEGAN.items():
            present = weights.status(weights.get_entry(name))["present"]
            rows.append({"name": name, "kind": "interfacegan", "default": 3.0, "layers": "all", "about": what,
                         "file": "here" if present else f"downloaded on first use ({name}.pt)"})
    pca = "cars_pca" if is_cars else "ffhq_pca"
    for name, (comp, start, end, value) in NAMED_EDITS[pca].items():
        rows.append({"name": f"ganspace:{name}", "kind": "ganspace", "default": value,
                     "layers": f"{start}-{end - 1}", "about": f"PCA component {comp}; strength = target coordinate",
                     "file": pca})
    rows.append({"name": "ganspace:N", "kind": "ganspace", "default": 0.0, "layers": "--layers required",
                 "about": "any PCA component N (0-79)", "file": pca})
    rows.append({"name": "sefa:K", "kind": "sefa", "default": 3.0, "layers": "all or --layers",
                 "about": "K-th closed-form direction of the generator (0 = strongest); about -10..10",
                 "file": "none (from the model)"})
    rows.append({"name": "PATH.pt|PATH.npy", "kind": "file", "default": 3.0, "layers": "all or --layers",
                 "about": "your own direction: [512], [1, 512], [n_styles, 512] or [1, n_styles, 512]",
                 "file": "yours"})
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("direction", "default strength", "layers", "meaning", "file")
    for row in rows:
        table.add_row(row["name"], f"{row['default']:g}", row["layers"], row["about"], row["file"])
    Console().print(table)


@app.command()
def evaluate(
    inputs: InputsArg,
    checkpoint: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="Checkpoint to evaluate; repeat to compare several.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Registry model to evaluate; repeatable.")
    ] = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated: l2,lpips,msssim,id,lec.")] = (
        "l2,lpips,msssim,id,lec"),
    lec_edit: Annotated[
        str, typer.Option("--lec-edit", help="Invertible edit for LEC, NAME[:STRENGTH]: age:3, sefa:0:5, my.npy:2.")
    ] = "age:3",
    align: Annotated[bool, typer.Option("--align", help="Align faces first (default: inputs are aligned).")] = False,
    per_image: Annotated[bool, typer.Option("--per-image", help="Include every image's values in the JSON.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one CSV row per checkpoint.")] = None,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = None,
    max_pixels: MaxPixelsOpt = 100_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure distortion (L2, LPIPS, MS-SSIM, identity) and editability (LEC) of encoders on a folder.

    Inputs are aligned face crops (use --align for raw photos); reconstructions are compared at 256 px.

    \b
    Examples:
      stylecli evaluate celeba_test/ --checkpoint e4e_ffhq_encode.pt --metrics l2,lpips,msssim,id,lec --json
      stylecli evaluate celeba_test/ --checkpoint psp.pt --checkpoint e4e.pt --csv results.csv

    \b
    Metrics:
      l2      mean squared error at 256 px in [-1, 1] (lower is better)
      lpips   LPIPS perceptual distance, AlexNet (lower is better)
      msssim  multi-scale SSIM (higher is better, 1 = identical)
      id      ArcFace cosine similarity of input and reconstruction (higher is better)
      lec     latent editing consistency, 1st-99th percentile trimmed mean (lower is better)
    """
    from stylecli.errors import StyleCliError

    try:
        from stylecli import evaluation as ev

        names = ev.parse_metrics(metrics)
    except StyleCliError as exc:
        raise typer.BadParameter(str(exc), param_hint="--metrics") from None
    sources: list[tuple[str, Path | None, str]] = [(str(c), c, "") for c in checkpoint or []]
    sources += [(m, None, m) for m in model or []]
    if not sources:
        sources = [("e4e_ffhq", None, "e4e_ffhq")]
    paths = _expand(inputs)
    reporter = None
    try:
        from stylecli.images import read_image
        from stylecli.pipeline import resolve_device
        from stylecli.runner import RunOptions, single_item

        dev = resolve_device(device.value)
        aligner = None
        if align:
            from stylecli.align import FaceAligner

            aligner = FaceAligner()
        options = RunOptions(align=align, max_pixels=max_pixels)
        images, skipped = [], []
        for p in paths:
            try:
                if align:
                    images.append((str(p), single_item(p, options, aligner).pixels))
                else:
                    images.append((str(p), read_image(p, max_pixels).pixels))
            except StyleCliError as exc:
                skipped.append(str(exc))
                if not quiet:
                    typer.echo(f"stylecli: error: {exc}", err=True)
        if not images:
            raise ev.EvaluationError("no readable image among the inputs")
        lpips_fn = ev.lpips_model(dev) if "lpips" in names else None
        arcface = ev.arcface_model(dev) if "id" in names else None
        import time

        from stylecli.progress import Reporter
        from stylecli.runner import Summary

        total = len(images) * len(sources)
        reporter = Reporter(total, quiet)
        started = time.perf_counter()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            reporter.update(Summary(total=total, done=done[0], faces=done[0], seconds=time.perf_counter() - started))

        results = []
        for label, ckpt, registry_name in sources:
            inverter = _inverter(ckpt, registry_name or "e4e_ffhq", device.value, batch_size)
            edit, strength = None, 0.0
            if "lec" in names:
                edit, strength = _lec_edit(lec_edit, inverter)
            results.append(ev.evaluate(inverter, images, names, label, edit, strength, lpips_fn, arcface,
                                       inverter.batch_size, tick))
    except StyleCliError as exc:
        if reporter:
            reporter.stop()
        raise fail(str(exc)) from None
    reporter.stop()
    document = {"images": len(images), "failed_inputs": skipped, "lec_edit": lec_edit if "lec" in names else None,
                "results": [r.to_dict(per_image) for r in results]}
    if as_json:
        typer.echo(json.dumps(document))
    if csv_path is not None:
        _write_csv(csv_path, document, names)
    if not quiet:
        _print_table(document, names)
    raise typer.Exit(1 if skipped else 0)


def _lec_edit(spec: str, inverter):
    from stylecli.editing import resolve_edit
    from stylecli.editing.ganspace import GanspaceEdit
    from stylecli.evaluation import EvaluationError, parse_lec_edit

    name, strength = parse_lec_edit(spec)
    edit = resolve_edit(name, inverter.n_styles, inverter.model.decoder)
    if isinstance(edit, GanspaceEdit):
        raise EvaluationError(f"--lec-edit {spec}: GANSpace edits have no exact inverse; use an InterFaceGAN, SeFa "
                              "or file direction")
    return edit, strength


def _write_csv(path: Path, document: dict, names: list[str]) -> None:
    import csv
    import io

    from stylecli.atomic import atomic_path

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["checkpoint", *[f"{m}_{s}" for m in names for s in ("mean", "std", "n")],
                     "encode_s_per_image", "synthesize_s_per_image"])
    for r in document["results"]:
        writer.writerow([r["checkpoint"], *[r["metrics"][m][s] for m in names for s in ("mean", "std", "n")],
                         r["speed"]["encode_s_per_image"], r["speed"]["synthesize_s_per_image"]])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def _print_table(document: dict, names: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("checkpoint", *names, "encode s/img", "synth s/img", title=f"{document['images']} images")
    for r in document["results"]:
        cells = [f"{r['metrics'][m]['mean']:.4f} ± {r['metrics'][m]['std']:.4f}" for m in names]
        table.add_row(r["checkpoint"], *cells, f"{r['speed']['encode_s_per_image']:.3f}",
                      f"{r['speed']['synthesize_s_per_image']:.3f}")
    Console(stderr=True).print(table)


@app.command()
def train(
    data: Annotated[Path | None, typer.Option("--data", help="Folder of training images (aligned faces).")] = None,
    val_data: Annotated[Path | None, typer.Option("--val-data", help="Folder of validation images.")] = None,
    generator: Annotated[
        str, typer.Option("--generator", help="StyleGAN2 generator: a registry name, a g_ema .pt, or an e4e/pSp "
                          "checkpoint (its decoder).")
    ] = "stylegan2_ffhq",
    out: Annotated[Path, typer.Option("--out", help="Run folder: latest.pt, best.pt, log.jsonl, images/.")] = Path(
        "runs/e4e"),
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder exactly.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Total training steps (default 300000).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per step (per GPU).")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Encoder learning rate.")] = 1e-4,
    optimizer: Annotated[str, typer.Option("--optimizer", help="ranger (RAdam + Lookahead) or adam.")] = "ranger",
    l2_lambda: Annotated[float, typer.Option("--l2-lambda")] = 1.0,
    lpips_lambda: Annotated[float, typer.Option("--lpips-lambda", help="LPIPS (AlexNet) weight.")] = 0.8,
    id_lambda: Annotated[float, typer.Option("--id-lambda", help="ArcFace identity weight (faces).")] = 0.1,
    moco_lambda: Annotated[
        float, typer.Option("--moco-lambda", help="MoCo feature similarity weight (other domains; 0.5 there).")
    ] = 0.0,
    delta_norm_lambda: Annotated[float, typer.Option("--delta-norm-lambda")] = 2e-4,
    w_discriminator_lambda: Annotated[
        float, typer.Option("--w-discriminator-lambda", help="Latent discriminator weight (0 turns it off).")
    ] = 0.1,
    w_discriminator_lr: Annotated[float, typer.Option("--w-discriminator-lr")] = 2e-5,
    r1: Annotated[float, typer.Option("--r1", help="R1 penalty weight.")] = 10.0,
    d_reg_every: Annotated[int, typer.Option("--d-reg-every", min=1)] = 16,
    use_w_pool: Annotated[bool, typer.Option("--use-w-pool", help="Pool of 50 past codes for the discriminator.")] = (
        False),
    progressive_start: Annotated[
        int | None, typer.Option("--progressive-start", help="Step of the first offset (faces: 20000); omit "
                                 "with --no-progressive to train every offset from the start.")
    ] = 20_000,
    no_progressive: Annotated[bool, typer.Option("--no-progressive", help="Train all offsets from step 0.")] = False,
    progressive_step_every: Annotated[int, typer.Option("--progressive-step-every", min=1)] = 2_000,
    encoder_init: Annotated[
        str, typer.Option("--encoder-init", help="arcface (IR-SE50 face weights, the recipe), none (random), or a "
                          ".pth path.")
    ] = "arcface",
    mean_latent_samples: Annotated[int, typer.Option("--mean-latent-samples", min=1)] = 100_000,
    save_every: Annotated[int, typer.Option("--save-every", min=1)] = 5_000,
    val_every: Annotated[int, typer.Option("--val-every", min=1)] = 1_000,
    image_every: Annotated[int, typer.Option("--image-every", min=1)] = 500,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    align: Annotated[bool, typer.Option("--align", help="Align raw photos on the fly.")] = False,
    device: DeviceOpt = Device.auto,
    quiet: QuietOpt = False,
) -> None:
    """Train an e4e encoder with the paper's recipe; checkpoints load in the official code and in stylecli.

    Every --X-lambda, schedule and optimizer setting is a flag; the defaults are the paper's for faces.
    Several GPUs: the same command under torchrun (DistributedDataParallel).

    \b
    Examples:
      stylecli train --data faces/train --val-data faces/test --generator stylegan2-ffhq-config-f.pt \\
          --out runs/ffhq --steps 300000 --batch-size 8
      stylecli train --resume runs/ffhq
      torchrun --nproc_per_node 8 -m stylecli train --data faces/train --out runs/ffhq
      stylecli invert photo.jpg --checkpoint runs/ffhq/best.pt
    """
    from dataclasses import replace

    from stylecli.errors import StyleCliError

    try:

        from stylecli.checkpoint import read_checkpoint
        from stylecli.pipeline import resolve_device
        from stylecli.training.trainer import TrainConfig, Trainer, init_distributed

        ckpt = None
        if resume is not None:
            path = resume / "latest.pt" if resume.is_dir() else resume
            ckpt = read_checkpoint(path)
            saved = (ckpt.get("stylecli_training") or {}).get("config")
            if not isinstance(saved, dict):
                raise StyleCliError(f"{path}: no training state in the checkpoint (not written by stylecli train)")
            config = TrainConfig(**saved)
            if steps is not None:  # a longer (or shorter) run than first planned
                config = replace(config, steps=steps)
        else:
            if data is None:
                raise typer.BadParameter("--data is required (or --resume RUN)", param_hint="--data")
            config = TrainConfig(
                data=str(data), val_data=str(val_data) if val_data else None, out=str(out), generator=generator,
                steps=steps or 300_000, batch_size=batch_size, lr=lr, optimizer=optimizer, l2_lambda=l2_lambda,
                lpips_lambda=lpips_lambda, id_lambda=id_lambda, moco_lambda=moco_lambda,
                delta_norm_lambda=delta_norm_lambda, w_discriminator_lambda=w_discriminator_lambda,
                w_discriminator_lr=w_discriminator_lr, r1=r1, d_reg_every=d_reg_every, use_w_pool=use_w_pool,
                progressive_start=None if no_progressive else progressive_start,
                progressive_step_every=progressive_step_every, mean_latent_samples=mean_latent_samples,
                save_every=save_every, val_every=val_every, image_every=image_every, log_every=log_every,
                seed=seed,
            )
        dist, dev = init_distributed(device.value)
        dev = dev or resolve_device(device.value)
        # On resume the encoder's architecture and weights come from the checkpoint: nothing to fetch.
        init = {k[8:]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")} if ckpt else encoder_init
        model, nets = _training_parts(config, init, config.seed, dev)
        aligner = None
        if align:
            from stylecli.align import FaceAligner

            aligner = FaceAligner()
        trainer = Trainer(config, model, nets, dev, dist, aligner)
        if ckpt is not None:
            trainer.resume(ckpt)
        import time

        from stylecli.progress import Reporter
        from stylecli.runner import Summary

        reporter = Reporter(config.steps, quiet or not dist.main)
        t0, first = time.perf_counter(), trainer.state.step

        def progress(step: int, logs: dict) -> None:
            elapsed = time.perf_counter() - t0
            reporter.update(Summary(total=config.steps, done=step, faces=step - first, seconds=elapsed))

        trainer.run(progress=progress)
        reporter.stop()
        reporter.say(f"trained to step {trainer.state.step}: {Path(config.out) / 'latest.pt'}")
    except StyleCliError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; continue with `stylecli train --resume RUN` from the last saved checkpoint",
                   130) from None
    finally:
        torch_module = sys.modules.get("torch")
        if torch_module is not None and torch_module.distributed.is_initialized():
            torch_module.distributed.destroy_process_group()


def _training_parts(config, encoder_init, seed: int, device):
    """The model to train and the pretrained loss networks, resolved through the registry when needed."""
    from stylecli import weights
    from stylecli.checkpoint import read_checkpoint
    from stylecli.loader import load_generator
    from stylecli.training.losses import FeatureSimilarityLoss
    from stylecli.training.trainer import training_model

    gen_path = Path(config.generator)
    if not gen_path.is_file():
        gen_path = weights.resolve(config.generator)
    generator = load_generator(gen_path)
    # encoder_init: "arcface" (the recipe), "none", a path to IR-SE weights, or a state dict (resume).
    if encoder_init == "arcface" or config.id_lambda > 0:
        arc_path = weights.resolve("arcface_ir_se50")
    if isinstance(encoder_init, dict):
        init_state = encoder_init
    elif encoder_init == "none":
        init_state = None
    else:
        init_state = read_checkpoint(arc_path if encoder_init == "arcface" else Path(encoder_init))
    model = training_model(generator, init_state, config.mean_latent_samples, seed)
    nets = _loss_nets(config, device)
    if config.id_lambda > 0:
        from stylecli.evaluation import arcface_model

        nets.identity = FeatureSimilarityLoss(arcface_model(device, arc_path), crop_face=True)
    return model, nets


def _loss_nets(config, device):
    """LPIPS and MoCo networks (separate so tests can swap them for small random ones)."""
    from stylecli.training.trainer import LossNets

    nets = LossNets()
    if config.lpips_lambda > 0:
        from stylecli.evaluation import lpips_model

        nets.lpips = lpips_model(device)
    if config.moco_lambda > 0:
        from stylecli.evaluation import moco_model
        from stylecli.training.losses import FeatureSimilarityLoss

        nets.moco = FeatureSimilarityLoss(moco_model(device), crop_face=False, size=224)
    return nets


def _inverter(checkpoint: Path | None, model: str, device: str, batch_size: int | None = None,
              precision: str = "fp32"):
    from stylecli import weights
    from stylecli.pipeline import Inverter, resolve_device

    dev = resolve_device(device)
    if checkpoint is not None:
        return Inverter.from_checkpoint(checkpoint, dev, batch_size=batch_size, precision=precision)
    entry = weights.get_entry(model)
    if entry.kind != "checkpoint":
        raise weights.WeightsError(f"--model {model}: is a {entry.kind or 'data'} file, not an encoder checkpoint")
    return Inverter.from_checkpoint(weights.resolve(model), dev, batch_size=batch_size, precision=precision)


@weights_app.command("list")
def weights_list(as_json: JsonOpt = False) -> None:
    """Show every registry entry, whether it is on this machine, and where it comes from.

    Example: stylecli weights list --json
    """
    from stylecli import weights

    rows = [weights.status(e) for e in weights.load_registry().values()]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "here", "size", "what", "source")
    for row in rows:
        size = f"{row['size'] / 1e6:.0f} MB" if row["size"] else "?"
        table.add_row(row["name"], "yes" if row["present"] else "no", size, row["what"], row["source"])
    Console().print(table)


@weights_app.command("pull")
def weights_pull(names: Annotated[list[str], typer.Argument(help="Registry names.", show_default=False)]) -> None:
    """Download (if needed) and verify registry files.

    Example: stylecli weights pull e4e_ffhq age smile
    """
    from stylecli import weights
    from stylecli.errors import StyleCliError

    failed = 0
    for name in names:
        try:
            path = weights.resolve(name)
            typer.echo(f"{name}: {path}", err=True)
        except StyleCliError as exc:
            typer.echo(f"stylecli: error: {exc}", err=True)
            failed += 1
    raise typer.Exit(1 if failed else 0)


@weights_app.command("verify")
def weights_verify(
    names: Annotated[list[str] | None, typer.Argument(help="Registry names (default: all present).")] = None,
) -> None:
    """Re-hash the files present on this machine and compare them with the registry's sha256.

    Example: stylecli weights verify e4e_ffhq
    """
    from stylecli import weights
    from stylecli.errors import StyleCliError

    registry = weights.load_registry()
    failed = 0
    for name in names or list(registry):
        try:
            entry = weights.get_entry(name, registry)
        except StyleCliError as exc:
            typer.echo(f"stylecli: error: {exc}", err=True)
            failed += 1
            continue
        path = weights.locate(entry)
        if path is None:
            if names:
                typer.echo(f"{name}: not on this machine (`stylecli weights pull {name}`)", err=True)
                failed += 1
            continue
        if entry.sha256 is None:
            typer.echo(f"{name}: {path} (no sha256 in the registry: not checked)", err=True)
            continue
        digest = weights.sha256_file(path)
        if digest == entry.sha256:
            typer.echo(f"{name}: ok {path}", err=True)
        else:
            typer.echo(f"stylecli: error: {name}: {path} has sha256 {digest}, expected {entry.sha256}", err=True)
            failed += 1
    raise typer.Exit(1 if failed else 0)


@weights_app.command("import")
def weights_import(
    name: Annotated[str, typer.Argument(help="Registry name, e.g. e4e_cars.", show_default=False)],
    path: Annotated[Path, typer.Argument(help="The file you downloaded.", show_default=False)],
) -> None:
    """Install a file you downloaded by hand, after checking its sha256 against the registry.

    Example: stylecli weights import e4e_ffhq ~/Downloads/e4e_ffhq_encode.pt
    """
    from stylecli import weights
    from stylecli.errors import StyleCliError

    try:
        dest = weights.import_file(name, path)
    except StyleCliError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{name}: installed {dest}", err=True)


def main() -> None:
    app()
