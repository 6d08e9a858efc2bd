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
        "Examples:\n\n"
        "  stylecli invert face.png --no-align -o out/ --json\n\n"
        "  stylecli invert face.png --no-align --checkpoint e4e_ffhq_encode.pt\n\n"
        "  stylecli weights list"
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
weights_app = typer.Typer(
    help="List, download, verify and import the model files stylecli uses (weights.toml).",
    no_args_is_help=True,
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
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON record per input on stdout; messages go to stderr.")]


@app.command()
def invert(
    inputs: InputsArg,
    out_dir: OutDirOpt = Path("."),
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = "e4e_ffhq",
    device: DeviceOpt = Device.auto,
    no_align: Annotated[
        bool, typer.Option("--no-align", help="Inputs are already aligned face crops: only resize to 256x256.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Refuse images larger than this (decompression-bomb guard).")
    ] = 100_000_000,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")] = False,
) -> None:
    """Invert images into W+ latent codes and write the generator's reconstruction.

    For each input NAME.ext it writes NAME.npy (float32, n_styles x 512: the code the generator
    consumes) and NAME_inversion.png (the full-resolution reconstruction) into --out-dir.

    Examples:

      stylecli invert face_aligned.png --no-align -o out/ --json

      stylecli invert crops/ --no-align --checkpoint e4e_ffhq_encode.pt -o out/

    Exit codes: 0 all inputs done, 1 some failed (the others are still done), 2 usage error.
    """
    if not no_align:
        raise fail(
            "face alignment is not available yet: pass --no-align for images that are already aligned "
            "face crops (FFHQ-style, the face centred and upright)",
            2,
        )
    from stylecli.inputs import expand_inputs

    paths = expand_inputs(inputs)
    if not paths:
        raise fail("no input images found in the given paths", 2)

    from stylecli.errors import StyleCliError
    from stylecli.runner import InvertOptions, Record, failed_records, run_invert

    def emit(record: Record) -> None:
        if as_json:
            sys.stdout.write(json.dumps(record.to_dict()) + "\n")
            sys.stdout.flush()
        if not quiet:
            if record.ok:
                typer.echo(f"{record.input} -> {', '.join(record.outputs.values())}", err=True)
            else:
                typer.echo(f"stylecli: error: {record.error}", err=True)

    try:
        inverter = _inverter(checkpoint, model, device.value)
    except StyleCliError as exc:
        if as_json:
            for record in failed_records(paths, str(exc)):
                sys.stdout.write(json.dumps(record.to_dict()) + "\n")
        raise fail(str(exc)) from None

    summary = run_invert(paths, inverter, InvertOptions(out_dir, overwrite, max_pixels), emit)
    if not quiet:
        typer.echo(f"done {summary.done}, failed {summary.failed} in {summary.seconds:.1f}s", err=True)
    raise typer.Exit(summary.exit_code)


def _inverter(checkpoint: Path | None, model: str, device: str):
    from stylecli import weights
    from stylecli.pipeline import Inverter, resolve_device

    dev = resolve_device(device)
    if checkpoint is not None:
        return Inverter.from_checkpoint(checkpoint, dev)
    entry = weights.get_entry(model)
    if entry.kind != "checkpoint":
        raise weights.WeightsError(f"--model {model}: is a {entry.kind or 'data'} file, not an encoder checkpoint")
    return Inverter.from_checkpoint(weights.resolve(model), dev)


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
