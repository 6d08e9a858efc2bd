"""invert, align, edit, mix: the commands that turn photos into latents and edits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli import app
from stylecli.cli.common import (
    BatchOpt,
    CheckpointOpt,
    Device,
    DeviceOpt,
    FacesOpt,
    InputsArg,
    JsonOpt,
    MaxPixelsOpt,
    ModelOpt,
    NoAlignOpt,
    NulOpt,
    OutDirOpt,
    OverwriteOpt,
    Precision,
    PrecisionOpt,
    QuietOpt,
    ShardOpt,
    SkipOpt,
    UpsampleOpt,
    WorkersOpt,
    execute_batch,
    expand_paths,
    fail,
    make_inverter,
    run_options,
)


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
    latent_only: Annotated[
        bool,
        typer.Option("--latent-only", help="Write only the latent (and the alignment files): no generator pass, "
                     "about half the time per face."),
    ] = False,
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
      stylecli invert dataset/ --latent-only -o latents/ --skip-existing

    Exit codes: 0 all inputs done, 1 some failed (the others are still done), 2 usage error.
    """
    options = run_options(out_dir, overwrite, max_pixels, no_align, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    paths = expand_paths(inputs, shard, null)

    def make_job():
        from stylecli.jobs import InvertJob

        return InvertJob(make_inverter(checkpoint, model, device.value, batch_size, precision.value), latent_only)

    execute_batch(paths, make_job, options, as_json, quiet)


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
    options = run_options(out_dir, overwrite, max_pixels, False, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    paths = expand_paths(inputs, shard, null)

    def make_job():
        from stylecli.jobs import AlignJob

        return AlignJob()

    execute_batch(paths, make_job, options, as_json, quiet)


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


def _parse_keep(spec: str | None, directions: list[str]) -> list[str]:
    """--keep a,b -> [a, b]; GANSpace edits move to a target coordinate, so they cannot be conditioned or kept."""
    kept = [k.strip() for k in (spec or "").split(",") if k.strip()]
    if spec is not None and not kept:
        raise typer.BadParameter("name at least one direction to keep", param_hint="--keep")
    ganspace = [d for d in (directions if kept else []) + kept if d.strip().startswith("ganspace:")]
    if ganspace:
        raise typer.BadParameter(f"{ganspace[0]} is a GANSpace edit (a target coordinate, not a fixed direction): "
                                 "--keep works with InterFaceGAN, SeFa and file directions", param_hint="--keep")
    return kept


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
        bool,
        typer.Option("--paste-back", help="Also blend the edited face back into the original photo (with --faces "
                     "all: every chosen face, in one photo per variant, NAME_<variant>_pasted.png)."),
    ] = False,
    save_latent: Annotated[bool, typer.Option("--save-latent", help="Also write each edited latent (.npy).")] = False,
    keep: Annotated[
        str | None,
        typer.Option("--keep", help="Comma-separated directions to hold: each edit moves orthogonally to them "
                     "(e.g. --keep gender,beard; not with GANSpace). The record's notes give the cosine kept."),
    ] = None,
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
      stylecli edit photo.jpg --direction age --strength 3 --keep gender,beard
    """
    options = run_options(out_dir, overwrite, max_pixels, no_align, faces, detector_upsample, skip_existing,
                           batch_size, workers)
    strengths = list(strength or [])
    if len(strengths) > len(direction):
        raise typer.BadParameter("more --strength values than --direction values", param_hint="--strength")
    sweep_values = _parse_sweep(sweep) if sweep else None
    if sweep_values and len(direction) > 1:
        raise typer.BadParameter("--sweep takes a single --direction", param_hint="--sweep")
    if gif and not sweep_values:
        raise typer.BadParameter("--gif animates a --sweep", param_hint="--gif")
    kept = _parse_keep(keep, direction)
    paths = expand_paths(inputs, shard, null)

    def make_job():
        from stylecli.editing import parse_layers
        from stylecli.jobs import EditJob, EditPlan

        inverter = make_inverter(checkpoint, model, device.value, batch_size, precision.value)
        chosen = parse_layers(layers, inverter.n_styles)
        edits = [
            (inverter.resolve_edit(d, chosen), strengths[i] if i < len(strengths) else None)
            for i, d in enumerate(direction)
        ]
        edits, notes = inverter.keep(edits, kept)
        plan = EditPlan(edits, sweep_values, grid, gif, paste_back, save_latent, tuple(notes))
        return EditJob(inverter, plan)

    execute_batch(paths, make_job, options, as_json, quiet)


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

        inverter = make_inverter(checkpoint, model, device.value)
        chosen = parse_layers(layers, inverter.n_styles)
        options = RunOptions(align=not no_align)
        aligner = None
        if options.align and (first.suffix != ".npy" or second.suffix != ".npy"):
            from stylecli.faces import FaceAligner

            aligner = FaceAligner()
        from stylecli.jobs import codes_of

        codes = [codes_of(inverter, [single_item(p, options, aligner)]) for p in (first, second)]
        image = inverter.synthesize(mix_codes(codes[0], codes[1], chosen, alpha))[0]
        write_png(image, out, overwrite)
    except StyleCliError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{first} + {second} (layers {layers}) -> {out}", err=True)
