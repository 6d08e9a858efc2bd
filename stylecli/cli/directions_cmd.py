"""directions: list the edits a model offers; learn a new one from examples; preview them on a photo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli.common import (
    BatchOpt,
    CheckpointOpt,
    Device,
    DeviceOpt,
    JsonOpt,
    MaxPixelsOpt,
    ModelOpt,
    NoAlignOpt,
    OverwriteOpt,
    QuietOpt,
    StepsOpt,
    WEncoderOpt,
    check_output,
    fail,
    make_editor,
    print_json,
    print_rows,
    registry_entry,
)
from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from stylecli.errors import counted, error_line, note_line, warning_line

directions_app = typer.Typer(
    help="The edit directions: list them (no subcommand), learn one from examples, preview them on a photo.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


@directions_app.callback()
def directions(
    ctx: typer.Context,
    model: ModelOpt = DEFAULT_MODEL,
    checkpoint: CheckpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the edit directions available for a model: kind, domain, layers, default strength and suggested
    range, source and license (--json adds each one's meaning and the full source and license).

    \b
    Examples:
      stylecli directions --model e4e_ffhq
      stylecli directions --checkpoint my_e4e.pt
      stylecli directions learn --positive glasses/ --negative no_glasses/ -o glasses.npy
      stylecli directions preview photo.jpg -o sheet.png --names age,smile,ganspace:bald
    """
    if ctx.invoked_subcommand is not None:
        return
    from stylecli.domains import KNOWN_DOMAINS
    from stylecli.editing.catalog import listing, model_domain

    given = getattr(ctx.get_parameter_source("model"), "name", "DEFAULT") != "DEFAULT"  # typed by the user
    if given and model.lower() not in KNOWN_DOMAINS:  # a short domain name (ffhq, cars, ...) or a registry model
        registry_entry(model, "--model")
    domain, n_styles = model_domain(model), None
    if checkpoint is not None:
        from stylecli.pipeline.editor import checkpoint_facts

        domain, n_styles = checkpoint_facts(checkpoint)
        if domain is None:
            fitting = f" found for {n_styles}-layer generators" if n_styles else ""
            typer.echo(note_line(f"{checkpoint} does not say what it was trained on (opts.dataset_type); listing the "
                                 f"directions{fitting} of every domain (edit checks only their shape)"), err=True)
    columns = {
        "direction": lambda r: r["name"], "kind": lambda r: r["kind"], "domain": lambda r: r["domain"] or "any",
        "layers": lambda r: r["layers"], "strength": lambda r: r["strength"], "source": lambda r: r["source_short"],
        "license": lambda r: r["license_short"],
    }
    print_rows(listing(domain, every_domain=checkpoint is not None, n_styles=n_styles), columns, as_json)


Examples = Annotated[
    list[str], typer.Option(help="Photos, .npy latents or folders of them (repeat the option for more).",
                            show_default=False),
]


@directions_app.command()
def learn(
    positive: Examples,
    negative: Examples,
    out: Annotated[Path, typer.Option("--out", "-o", help="The direction file to write (.npy or .pt).")],
    layer: Annotated[
        int | None, typer.Option("--layer", min=0, help="Fit on this W+ layer (default: the mean of the layers).")
    ] = None,
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = Device.auto,
    no_align: NoAlignOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    batch_size: BatchOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Learn a direction from examples with and without an attribute (a linear SVM on their codes).

    Photos are aligned and inverted with the model (as `invert` does; --no-align for aligned crops); .npy latents
    are used as they are. Writes the unit normal as float32 [1, 512] and OUT.json (counts, model, 5-fold held-out
    accuracy). Needs at least 5 examples per side; warns when the held-out accuracy is under 0.8.

    \b
    Example:
      stylecli directions learn --positive glasses/ --negative no_glasses/ -o glasses.npy
      stylecli edit photo.jpg --direction glasses.npy --strength 3
    """
    pos, neg = _learn_inputs(positive, negative, out, overwrite)
    from stylecli.editing.learn import check_sklearn, learn_from_inputs, save_direction

    check_sklearn()

    def progress(side: str, done: int, total: int) -> None:
        if not quiet:
            typer.echo(f"stylecli: inverting {side} examples: {done}/{total}", err=True)

    learned, failed = learn_from_inputs(
        pos, neg, lambda: make_editor(checkpoint, model, device.value, batch_size, max_pixels=max_pixels), layer,
        not no_align, progress, str(checkpoint or model))
    for message in failed:
        typer.echo(error_line(message), err=True)
    save_direction(learned, out, overwrite)
    _report_learned(learned, out, as_json, quiet)
    raise typer.Exit(1 if failed else 0)


def _learn_inputs(positive: list[str], negative: list[str], out: Path, overwrite: bool):
    """The example files of both sides, checked before any model is loaded (usage errors exit 2)."""
    from stylecli.editing.learn import MIN_PER_SIDE, shared_example
    from stylecli.pipeline.examples import expand_examples

    if out.suffix not in (".npy", ".pt"):
        raise typer.BadParameter(f"{out}: write the direction as .npy or .pt", param_hint="--out")
    pos, neg = expand_examples(positive), expand_examples(negative)
    missing = [str(p) for p in (*pos, *neg) if not p.exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if missing[1:] else ""
        raise fail(f"{missing[0]}: no such file or folder{more}", 2)
    if min(len(pos), len(neg)) < MIN_PER_SIDE:
        raise fail(f"learning a direction needs at least {MIN_PER_SIDE} examples on each side; found {len(pos)} "
                   f"positive and {len(neg)} negative inputs: add more examples", 2)
    for path in (out, Path(f"{out}.json")):
        check_output(path, overwrite, "--out")
    shared = shared_example(pos, neg)
    if shared is not None:
        raise fail(f"{shared}: both a positive and a negative example; a direction is learned from examples that "
                   "differ: remove it from one side", 2)
    return pos, neg


def _report_learned(learned, out: Path, as_json: bool, quiet: bool) -> None:
    from stylecli.editing.learn import WARN_BELOW

    if as_json:
        print_json({"direction": str(out), **learned.sidecar()})
    if learned.accuracy < WARN_BELOW:
        typer.echo(warning_line(f"held-out accuracy {learned.accuracy:.2f} is under {WARN_BELOW}: the examples may "
                                "differ in more than one attribute, or be too few; check the direction before use"),
                   err=True)
    if not quiet:
        typer.echo(f"{out}: from {learned.positive} positive and {learned.negative} negative examples, "
                   f"{learned.folds}-fold held-out accuracy {learned.accuracy:.3f}", err=True)


@directions_app.command()
def preview(
    photo: Annotated[Path, typer.Argument(help="A photo, or a .npy latent written by `invert`.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The contact sheet to write (.png).")] = Path("sheet.png"),
    names: Annotated[
        str | None, typer.Option("--names", help="Comma-separated directions (default: every named direction "
                                 "of the model's domain).")
    ] = None,
    strength: Annotated[
        float | None, typer.Option("--strength", "-s", help="Show -S, 0 and +S (default: each direction's "
                                   "suggested range).")
    ] = None,
    cell: Annotated[int, typer.Option("--cell", min=32, max=1024, help="Size of each image in the sheet.")] = 256,
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    steps: StepsOpt = None, w_encoder: WEncoderOpt = None,  # ReStyle / HyperStyle
    device: DeviceOpt = Device.auto,
    no_align: NoAlignOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Render every direction on one photo at -S, 0 and +S as one labelled contact sheet: one row per direction.

    A saved latent renders as `stylecli edit` renders it: through the HyperStyle offsets or tuned weights beside it.

    \b
    Examples:
      stylecli directions preview photo.jpg -o sheet.png
      stylecli directions preview photo.jpg -o sheet.png --names age,smile,ganspace:bald --strength 3
    """
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names is not None else None
    if chosen is not None and not chosen:
        raise typer.BadParameter("give at least one direction name", param_hint="--names")
    if out.suffix.lower() != ".png":
        raise typer.BadParameter(f"{out}: the sheet is written as PNG: name it .png", param_hint="--out")
    check_output(out, overwrite, "--out")
    from stylecli.batch.inputs import input_path
    from stylecli.editing.resolve import check_spec
    from stylecli.pipeline.sources import source_code

    photo = input_path(str(photo))  # sample:NAME too
    if not photo.is_file():
        raise fail(f"{photo}: no such file")
    for spec in chosen or []:  # what can be told before the model loads (an unknown name, a NaN file): exit 2
        check_spec(spec)

    editor = make_editor(checkpoint, model, device.value, quiet=quiet, steps=steps, w_encoder=w_encoder,
                         max_pixels=max_pixels)
    code = source_code(editor, photo, not no_align)  # a saved latent with its own generator weights, as `edit`
    if chosen is None:
        chosen = _default_names(editor)
    rows = _preview_rows(editor, code, chosen, strength, quiet)
    good = _write_preview(rows, photo, out, cell, overwrite, as_json, quiet)
    raise typer.Exit(0 if good == len(rows) else 1)


def _default_names(editor) -> list[str]:
    """The model's named directions whose files are here (else SeFa's), with one note on those left out."""
    from stylecli.editing.catalog import preview_names

    chosen, missing = preview_names(editor.domain, editor.n_styles)
    if missing:
        files = " ".join(dict.fromkeys(d.file for d in missing))
        instead = " (the sheet shows SeFa's instead)" if chosen[0].startswith("sefa:") else ""
        typer.echo(note_line(f"left out {len(missing)} named direction{'s' * (len(missing) != 1)} whose files are "
                             f"not on this machine{instead}; `stylecli weights pull {files}` downloads them"), err=True)
    return chosen


def _write_preview(rows, photo: Path, out: Path, cell: int, overwrite: bool, as_json: bool, quiet: bool) -> int:
    """Print the rows that failed, write the sheet of the others; returns how many rendered."""
    from stylecli.files.sheets import row_sheet, write_sheet

    good = [r for r in rows if r.error is None]
    for r in rows:
        if r.error is not None:
            typer.echo(error_line(r.error), err=True)
    if good:
        info = {"rows": [{"direction": r.name, "strengths": r.strengths} for r in good]}
        write_sheet(row_sheet([(r.name, list(r.images), r.labels) for r in good], cell), out, overwrite, info)
        if as_json:
            print_json({"sheet": str(out), **info})
        if not quiet:
            typer.echo(f"{photo} -> {out} ({counted(len(good), 'direction')})", err=True)
    return len(good)


def _preview_rows(editor, encoded, names: list[str], strength: float | None, quiet: bool):
    from stylecli.pipeline.render import preview

    def progress(name: str) -> None:
        if not quiet:
            typer.echo(f"stylecli: rendered {name}", err=True)

    return preview(editor, encoded, names, strength, progress)
