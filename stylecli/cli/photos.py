"""invert, align, edit, mix: the commands that turn photos into latents and edits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from stylecli.cli.common import (
    BatchOpt,
    BlendOpt,
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
    StepsOpt,
    UpsampleOpt,
    WEncoderOpt,
    WorkersOpt,
    execute_batch,
    expand_paths,
    face_options,
    make_editor,
    photo_editor,
    print_json,
    registry_entry,
    run_options,
)
from stylecli.cli.tune_opts import (
    LocalityOpt,
    NoTuneOpt,
    PivotOpt,
    TuneLrOpt,
    TuneOpt,
    TuneStepsOpt,
    TuneStopOpt,
    make_tuner,
)
from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, INTERFACEGAN_NAMES
from stylecli.errors import UsageError, note_line

LatentOnlyOpt = Annotated[
    bool,
    typer.Option("--latent-only", help="Write only the latent (and the alignment files): no generator pass, "
                 "about half the time per face."),
]
SaveStepsOpt = Annotated[
    bool, typer.Option("--save-steps", help="ReStyle / HyperStyle: also each earlier pass's image, NAME_stepT.png.")
]


def invert(
    inputs: InputsArg,
    out_dir: OutDirOpt = Path("."),
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.fp32,
    no_align: NoAlignOpt = False,
    faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = 2,
    null: NulOpt = False,
    latent_only: LatentOnlyOpt = False,
    steps: StepsOpt = None,
    save_steps: SaveStepsOpt = False,
    w_encoder: WEncoderOpt = None,
    tune: TuneOpt = False, tune_steps: TuneStepsOpt = None, tune_lr: TuneLrOpt = None,  # pivotal tuning
    tune_lpips_stop: TuneStopOpt = None, locality: LocalityOpt = False, pivot: PivotOpt = None,
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
      stylecli invert photo.jpg --model restyle_e4e_ffhq --steps 3 --save-steps
      stylecli invert photo.jpg --tune -o out/     # out/photo_tuned.npy + photo_tuned.tuned.safetensors

    Exit codes: 0 all done, 1 some inputs failed (the others are done), 2 usage or set-up, 3 download failed.
    """
    options, chosen = run_options(out_dir, overwrite, skip_existing, batch_size, workers), face_options(no_align, faces)
    _check_save_steps(save_steps, latent_only, tune)
    tuner = make_tuner(tune, tune_steps, tune_lr, tune_lpips_stop, locality, pivot, quiet)
    paths = expand_paths(inputs, shard, null)

    def make_job():
        from stylecli.batch.jobs import InvertJob

        editor = load_before_inputs(make_editor(checkpoint, model, device.value, batch_size, precision.value, quiet,
                                                max_pixels=max_pixels, detector_upsample=detector_upsample,
                                                steps=steps, w_encoder=w_encoder), chosen, paths)
        return InvertJob(editor, chosen, latent_only, tuner, save_steps)

    execute_batch(paths, make_job, options, as_json, quiet)


def load_before_inputs(editor, faces, paths: list[Path]):
    """The editor, with the landmark model loaded before the first input when some input is a photo to align, so
    that a missing dlib or a landmark file that cannot be downloaded ends the run in one line (exit 2 or 3)
    instead of failing every photo; saved latents alone need neither. (The job loads LPIPS for --tune.)"""
    from stylecli.naming import is_latent

    if faces.align and any(not is_latent(p) for p in paths):
        editor.aligner  # noqa: B018 - loads dlib and its landmark model
    return editor


def _check_save_steps(save_steps: bool, latent_only: bool, tune: bool) -> None:
    if save_steps and latent_only:
        raise typer.BadParameter("--save-steps renders images; --latent-only renders none", param_hint="--save-steps")
    if save_steps and tune:
        raise typer.BadParameter("--save-steps shows the encoder's passes: not with --tune", param_hint="--save-steps")


def align(
    inputs: InputsArg,
    out_dir: OutDirOpt = Path("."),
    faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None,
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
    options, chosen = run_options(out_dir, overwrite, skip_existing, None, workers), face_options(False, faces)
    paths = expand_paths(inputs, shard, null)

    def make_job():
        from stylecli.batch.jobs import AlignJob

        return AlignJob(load_before_inputs(photo_editor(max_pixels, detector_upsample), chosen, paths), chosen)

    execute_batch(paths, make_job, options, as_json, quiet)


MAX_SWEEP = 100  # renders per input; each is a generator pass


def _parse_sweep(spec: str) -> list[float]:
    try:
        start, stop, n = spec.split(":")
        count = int(n)
        if not 2 <= count <= MAX_SWEEP:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"expected START:STOP:N with 2 <= N <= {MAX_SWEEP}, e.g. -4:4:9",
                                 param_hint="--sweep") from None
    import numpy as np

    return [round(float(v), 6) for v in np.linspace(float(start), float(stop), count)]


DirectionOpt = Annotated[
    list[str],
    typer.Option("--direction", "-d", metavar="SPEC", help=f"{', '.join(INTERFACEGAN_NAMES)}, ganspace:NAME, "
                 "ganspace:N, sefa:K or a .pt/.npy file; repeat for several edits at once. `stylecli directions` "
                 "lists them."),
]
StrengthOpt = Annotated[
    list[float] | None,
    typer.Option("--strength", "-s", metavar="S", help="Strength of the matching --direction (in order); default: the "
                 "direction's own, as `stylecli directions` lists it (3 for most, the published value for GANSpace)."),
]
LayersOpt = Annotated[
    str | None, typer.Option("--layers", metavar="LIST", help="Only these W+ layers, e.g. 0-5 or 0-3,8 (inclusive).")
]
SweepOpt = Annotated[
    str | None, typer.Option("--sweep", metavar="START:STOP:N", help="Render N strengths from START to STOP.")
]
GridOpt = Annotated[bool, typer.Option("--grid", help="Also write a labelled contact sheet.")]
GifOpt = Annotated[bool, typer.Option("--gif", help="Also write an animation of the sweep.")]
PasteBackOpt = Annotated[
    bool,
    typer.Option("--paste-back", help="Also blend the edited face back into the original photo (with --faces all: "
                 "every chosen face, in one photo per variant, NAME_<variant>_pasted.png)."),
]
SaveLatentOpt = Annotated[bool, typer.Option(
    "--save-latent", help="Also write each edited latent (NAME_<variant>.npy), with what `edit` needs to continue from "
    "it: its .align.json, and the face's own generator weights (.hyperstyle.npz or .tuned.safetensors).")]
KeepOpt = Annotated[
    str | None,
    typer.Option("--keep", help="Comma-separated directions to hold: each edit moves orthogonally to them (e.g. "
                 "--keep gender,beard; not with GANSpace). The record's notes give the cosine kept."),
]


def edit(
    inputs: InputsArg,
    direction: DirectionOpt,
    strength: StrengthOpt = None,
    layers: LayersOpt = None,
    sweep: SweepOpt = None,
    grid: GridOpt = False, gif: GifOpt = False,
    paste_back: PasteBackOpt = False, blend: BlendOpt = "feather",
    save_latent: SaveLatentOpt = False,
    keep: KeepOpt = None,
    steps: StepsOpt = None, w_encoder: WEncoderOpt = None,  # ReStyle / HyperStyle
    tune: TuneOpt = False, no_tune: NoTuneOpt = False, tune_steps: TuneStepsOpt = None, tune_lr: TuneLrOpt = None,
    tune_lpips_stop: TuneStopOpt = None, locality: LocalityOpt = False, pivot: PivotOpt = None,  # pivotal tuning
    out_dir: OutDirOpt = Path("."),
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.fp32,
    no_align: NoAlignOpt = False, faces: FacesOpt = "largest",
    detector_upsample: UpsampleOpt = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    skip_existing: SkipOpt = False,
    shard: ShardOpt = None, batch_size: BatchOpt = None,
    workers: WorkersOpt = 2, null: NulOpt = False,
    as_json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Edit photos (or saved latents) along semantic directions and render the results.

    Images are aligned and inverted first; a .npy latent written by `invert` is edited directly (no re-encoding;
    its .align.json makes --paste-back work, its .tuned.safetensors is used unless --no-tune, a HyperStyle
    latent's .hyperstyle.npz always). A folder gives its images and .npy latents: an `invert` output folder
    edits the latents, not the crops and renders made from them. Outputs are named NAME_<direction><strength>.png.

    \b
    Examples:
      stylecli edit photo.jpg --direction age --strength 3
      stylecli edit photo.jpg -d smile -s -2 -d pose -s 1.5 --paste-back
      stylecli edit out/photo.npy --direction ganspace:white_hair
      stylecli edit photo.jpg --direction age --sweep -4:4:9 --grid --gif
      stylecli edit photo.jpg --direction sefa:3 --layers 0-5 --strength 5
      stylecli edit photo.jpg --direction age --strength 3 --keep gender,beard
      stylecli edit photo.jpg --model hyperstyle_ffhq --direction age --strength 3 --paste-back
      stylecli edit photo.jpg --tune -d smile -s 2 --paste-back
    """
    options, chosen = run_options(out_dir, overwrite, skip_existing, batch_size, workers), face_options(no_align, faces)
    plan = edit_plan(direction, strength, sweep, grid, gif, paste_back, save_latent, blend, keep, layers,
                     None if checkpoint else model)
    paths = paste_back_inputs(expand_paths(inputs, shard, null, latents=True, quiet=quiet), plan, chosen)
    tuner = make_tuner(tune, tune_steps, tune_lr, tune_lpips_stop, locality, pivot, quiet, no_tune, paths)

    def make_job():
        from stylecli.batch.jobs import EditJob

        editor = load_before_inputs(make_editor(checkpoint, model, device.value, batch_size, precision.value, quiet,
                                                max_pixels=max_pixels, detector_upsample=detector_upsample,
                                                steps=steps, w_encoder=w_encoder), chosen, paths)
        return EditJob(editor, chosen, resolve_plan(plan, editor, layers, quiet), tuner, saved_tuning=not no_tune)

    execute_batch(paths, make_job, options, as_json, quiet)


def edit_plan(direction: list[str], strength: list[float] | None, sweep: str | None, grid: bool, gif: bool,
              paste_back: bool, save_latent: bool, blend: str, keep: str | None = None,
              layers: str | None = None, model: str | None = None):
    """The edit options checked against each other and each direction spec checked as far as it can be without
    the model (form, name or file, the domain of `model`, a registry name; --layers syntax): usage errors, before
    any input is read or any model resolved. Directions are resolved later against the model (resolve_plan)."""
    from stylecli.batch.jobs import EditPlan

    strengths = list(strength or [])
    if sweep and strengths:
        raise typer.BadParameter("--sweep sets the strengths; drop --strength", param_hint="--sweep")
    if len(strengths) > len(direction):
        raise typer.BadParameter("more --strength values than --direction values", param_hint="--strength")
    sweep_values = _parse_sweep(sweep) if sweep else None
    if sweep_values and len(direction) > 1:
        raise typer.BadParameter("--sweep takes a single --direction", param_hint="--sweep")
    if gif and not sweep_values:
        raise typer.BadParameter("--gif animates a --sweep", param_hint="--gif")
    if blend not in ("feather", "seamless"):
        raise typer.BadParameter("expected feather or seamless", param_hint="--blend")
    if blend != "feather" and not paste_back:
        raise typer.BadParameter(f"--blend {blend} blends the paste-back: add --paste-back", param_hint="--blend")
    if blend == "seamless":  # a missing OpenCV is said now, not after every photo was inverted
        from stylecli.faces.paste import import_cv2

        import_cv2()
    kept = _parse_keep(keep, direction)
    from stylecli.domains import DOMAIN_STYLES
    from stylecli.editing import parse_layers
    from stylecli.editing.resolve import check_spec

    domain = registry_entry(model, "--model").domain if model else None
    parse_layers(layers, DOMAIN_STYLES.get(domain or ""))  # the syntax; the indices when the model's are known
    for spec in direction:
        check_spec(spec, layers, domain)
    for spec in kept:
        check_named("--keep", lambda spec=spec: check_spec(spec, None, domain))
    edits = [(d, strengths[i] if i < len(strengths) else None) for i, d in enumerate(direction)]
    return EditPlan(edits, sweep_values, grid, gif, paste_back, save_latent, blend, kept)


def check_named(option: str, call: Callable[[], Any]) -> Any:
    """call(), with a direction error naming `option` (the specs of --keep are directions too)."""
    from stylecli.editing.base import EditError

    try:
        return call()
    except EditError as exc:
        raise exc.for_option(option) from None


def paste_back_inputs(paths: list[Path], plan, faces) -> list[Path]:
    """The inputs, unless --paste-back is asked for photos given with --no-align (no face position to paste at)."""
    from stylecli.naming import is_latent

    photos = [p for p in paths if not is_latent(p)]
    if plan.paste_back and not faces.align and photos:
        raise typer.BadParameter(f"{photos[0]}: --no-align takes the image as the face crop, so there is nothing to "
                                 "paste it back into: drop one of them", param_hint="--paste-back")
    return paths


def _parse_keep(spec: str | None, directions: list[str]) -> tuple[str, ...]:
    """--keep a,b -> (a, b); GANSpace edits move to a target coordinate, so they cannot be conditioned or kept."""
    kept = tuple(k.strip() for k in (spec or "").split(",") if k.strip())
    if spec is not None and not kept:
        raise typer.BadParameter("name at least one direction to keep", param_hint="--keep")
    ganspace = [d for d in (list(directions) if kept else []) + list(kept) if d.strip().startswith("ganspace:")]
    if ganspace:
        raise typer.BadParameter(f"{ganspace[0]} is a GANSpace edit (a target coordinate, not a fixed direction): "
                                 "--keep works with InterFaceGAN, SeFa and file directions", param_hint="--keep")
    return kept


def resolve_plan(plan, editor, layers: str | None, quiet: bool = False):
    """The plan with each direction spec turned into an Edit for this model (what a default did is said once)."""
    from dataclasses import replace

    from stylecli.editing import parse_layers
    from stylecli.naming import with_keep, with_layers

    chosen = parse_layers(layers, editor.n_styles)
    edits = [(editor.resolve_edit(spec, chosen), s) for spec, s in plan.edits]
    if chosen is not None:  # the layers change the pixels, so they are in the names
        edits = [(replace(e, label=with_layers(e.label, chosen)), s) for e, s in edits]
    edits, notes = check_named("--keep", lambda: editor.keep(edits, plan.keep))
    defaults = [f"{spec} without --strength: moved to coordinate 0 of component {spec.partition(':')[2].strip()} "
                "(the mean face's value); --strength sets the target coordinate, in standard deviations"
                for spec, s in plan.edits if s is None and plan.sweep is None and _raw_ganspace(spec)]
    for note in defaults if not quiet else []:
        typer.echo(note_line(note), err=True)
    if plan.keep:  # a conditioned edit has other pixels than the plain one, so the kept directions are in the names
        edits = [(replace(e, label=with_keep(e.label, plan.keep)), s) for e, s in edits]
    return replace(plan, edits=edits, notes=(*notes, *defaults))


def _raw_ganspace(spec: str) -> bool:
    kind, _, arg = spec.strip().partition(":")
    return kind == "ganspace" and arg.strip().isdigit()


def mix(
    first: Annotated[Path, typer.Argument(help="Image or latent giving the base code.", show_default=False)],
    second: Annotated[Path, typer.Argument(help="Image or latent giving the mixed-in layers.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the output (named FIRST+SECOND_"
                                          "layersA-B.png), or a file name whose extension (.png, .jpg, .webp) "
                                          "sets the format.")] = Path("."),
    layers: Annotated[str | None, typer.Option("--layers", help="Layers taken from SECOND, e.g. 8-17. Default: "
                                               "the fine layers: 8 to the last (18 styles), the upper half on "
                                               "smaller models (7-13 of 14).", show_default=False)] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="1: copy; 0.5: halfway.")] = 1.0,
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    no_align: NoAlignOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Style mixing: FIRST's code with chosen layers taken from SECOND (coarse 0-3: pose and shape,
    middle 4-7: features, fine 8+: colours and texture).

    With an encoder that adapts the generator to each photo, the mix is rendered with FIRST's generator.

    Example: stylecli mix a.jpg b.jpg --layers 8-17 -o mixed/
    """
    from stylecli.batch.inputs import input_path
    from stylecli.cli.common import check_out_dir, unreadable_inputs
    from stylecli.editing.mixing import mix as mix_codes
    from stylecli.encoders.base import Encoded
    from stylecli.files.images import write_image
    from stylecli.pipeline.render import render_variants
    from stylecli.pipeline.sources import source_code

    first, second = input_path(str(first)), input_path(str(second))  # sample:NAME: a packaged sample photo
    as_file = out_dir.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and not out_dir.is_dir()
    if out_dir.suffix.lower() in (".gif", ".bmp", ".tif", ".tiff", ".npy") and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir}: mix writes .png, .jpg or .webp (or give a folder)")
    check_out_dir(out_dir.parent if as_file else out_dir)
    known = early_mix_layers(layers, None if checkpoint else model)  # usage errors before the model loads
    if known is not None or as_file:
        mix_destination(out_dir, as_file, first, second, known or (), alpha, overwrite)
    unreadable_inputs([first, second])
    editor = make_editor(checkpoint, model, device.value, quiet=quiet, max_pixels=max_pixels)
    chosen = mix_layers(layers, editor.n_styles)
    dest = mix_destination(out_dir, as_file, first, second, chosen, alpha, overwrite)
    # a tuned latent mixes through the shared generator (the tuned weights beside it are not read)
    base, other = (source_code(editor, p, not no_align, saved_tuning=False) for p in (first, second))
    mixed = mix_codes(base.codes, other.codes, chosen, alpha)
    image = render_variants(editor, Encoded(mixed, base.weights), [], reconstruct=True).reconstructions[0]
    write_image(image, dest, overwrite)
    if as_json:  # the record every command prints, with the second input and the layers beside it
        print_json({"input": str(first), "ok": True, "status": "done", "outputs": {"image": str(dest)},
                    "error": None, "notes": [], "second": str(second), "layers": list(chosen), "alpha": alpha})
    if not quiet:
        from stylecli.naming import layers_tag

        typer.echo(f"{first} + {second} (layers {layers_tag(chosen)}) -> {dest}", err=True)


def early_mix_layers(spec: str | None, model: str | None) -> tuple[int, ...] | None:
    """mix's --layers as far as they are known before the model loads: the syntax is checked; the layers come
    from the spec, or from the style count of a registry model's domain (None when only the model can tell)."""
    from stylecli.domains import DOMAIN_STYLES
    from stylecli.editing import parse_layers

    chosen = parse_layers(spec)
    if chosen is not None:
        return chosen
    styles = DOMAIN_STYLES.get(registry_entry(model, "--model").domain or "") if model else None
    return mix_layers(spec, styles) if styles else None


def mix_destination(out_dir: Path, as_file: bool, first: Path, second: Path, chosen: tuple[int, ...], alpha: float,
                    overwrite: bool) -> Path:
    """mix's output file (-o itself, or FIRST+SECOND_layersA-B.png in the -o folder); an existing one without
    --overwrite is a usage error."""
    from stylecli.naming import mix_name

    dest = out_dir if as_file else out_dir / f"{mix_name(first.stem, second.stem, chosen, alpha)}.png"
    if dest.exists() and not overwrite:
        raise UsageError(f"{dest}: exists (pass --overwrite to replace it)")
    return dest


def mix_layers(spec: str | None, n_styles: int) -> tuple[int, ...]:
    """--layers for mix; default the fine layers (8 to the last, or the upper half of a small model)."""
    from stylecli.editing import parse_layers

    chosen = parse_layers(spec, n_styles) if spec else tuple(range(min(8, n_styles // 2), n_styles))
    return chosen if chosen is not None else tuple(range(n_styles))
