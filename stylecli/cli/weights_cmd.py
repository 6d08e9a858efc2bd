"""stylecli weights list | pull | verify | import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli.common import JsonOpt, print_rows, registry_entry
from stylecli.errors import error_line, note_line

weights_app = typer.Typer(
    help="List, download, verify and import the model files stylecli uses (weights.toml).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@weights_app.command("list")
def weights_list(as_json: JsonOpt = False) -> None:
    """Show every registry entry, whether it is on this machine, and where it comes from.

    Example: stylecli weights list --json
    """
    from stylecli.registry import weights

    rows = [weights.status(e) for e in weights.load_registry().values()]
    print_rows(rows, {"name": lambda r: r["name"], "here": lambda r: "yes" if r["present"] else "no",
                      "size": lambda r: f"{r['size'] / 1e6:.0f} MB" if r["size"] else "?",
                      "what": lambda r: r["what"], "source": lambda r: r["source"]}, as_json)


@weights_app.command("pull")
def weights_pull(
    names: Annotated[list[str] | None, typer.Argument(
        help="Registry names (default: what the default commands need: the default model, the landmark model, "
             "the named directions, LPIPS's AlexNet, ArcFace).", show_default=False)] = None,
    pull_all: Annotated[bool, typer.Option("--all", help="Every entry that can be downloaded; those that must be "
                                           "downloaded by hand are listed with how, and do not fail.")] = False,
) -> None:
    """Download (if needed) and verify registry files: prepares a machine to work offline.

    \b
    Examples:
      stylecli weights pull                      # what the default commands need
      stylecli weights pull --all                # everything that can be downloaded
      stylecli weights pull e4e_ffhq age smile
    """
    from stylecli.errors import StyleCliError, UsageError
    from stylecli.registry import weights

    if names and pull_all:
        raise UsageError("weights pull: give names or --all, not both")
    if not names:
        registry = weights.load_registry()
        if pull_all:  # manual-only entries not imported yet are listed with how to get them, and do not fail
            by_hand = [e for e in registry.values() if e.manual_only and weights.locate(e) is None]
            for entry in by_hand:
                typer.echo(note_line(f"skipped: {weights.unavailable_message(entry, [])}"), err=True)
            names = [e.name for e in registry.values() if e not in by_hand]
        else:
            names = weights.default_pull_names(registry)
    for name in names:  # an unknown name is a usage error, said before any download
        registry_entry(name)
    code = 0
    for name in names:
        try:
            path = weights.resolve(name)
            typer.echo(f"{name}: {path}", err=True)
        except StyleCliError as exc:
            typer.echo(error_line(str(exc)), err=True)
            code = max(code, exc.exit_code)  # 3: a download failed; 2: a file to import by hand, or a bad one
    raise typer.Exit(code)


@weights_app.command("verify")
def weights_verify(
    names: Annotated[list[str] | None, typer.Argument(help="Registry names (default: all present).")] = None,
) -> None:
    """Re-hash the files present on this machine and compare them with the registry's sha256 (for a file
    imported by hand where the registry has none: with the sha256 recorded at import).

    Example: stylecli weights verify e4e_ffhq
    """
    from stylecli.registry import weights

    # an unknown name is a usage error, said before any file is hashed
    entries = [registry_entry(name) for name in names] if names else list(weights.load_registry().values())
    failed = 0
    for entry in entries:
        name, path = entry.name, weights.locate(entry)
        if path is None:
            if names:
                typer.echo(f"{name}: not on this machine (`stylecli weights pull {name}`)", err=True)
                failed += 1
            continue
        expected, against = entry.sha256, ""
        if expected is None:
            expected, against = weights.recorded_sha256(entry, path), " (the sha256 recorded at its import)"
        if expected is None:
            typer.echo(f"{name}: {path} (no sha256 in the registry, none recorded at import: not checked; "
                       f"`stylecli weights import {name} PATH` records one)", err=True)
            continue
        digest = weights.sha256_file(path)
        if digest != expected:
            typer.echo(error_line(f"{name}: {path} has sha256 {digest}, expected {expected}{against}"), err=True)
            failed += 1
        elif entry.sha256 is None:
            typer.echo(f"{name}: ok {path} (unchanged since its import; no published sha256 to check it against)",
                       err=True)
        else:
            typer.echo(f"{name}: ok {path}", err=True)
    raise typer.Exit(1 if failed else 0)


@weights_app.command("import")
def weights_import(
    name: Annotated[str, typer.Argument(help="Registry name, e.g. e4e_cars.", show_default=False)],
    path: Annotated[Path, typer.Argument(help="The file you downloaded.", show_default=False)],
) -> None:
    """Install a file you downloaded by hand, after checking its sha256 against the registry (where the registry
    has none: that it loads as a file of the entry's kind and architecture).

    Example: stylecli weights import e4e_ffhq ~/Downloads/e4e_ffhq_encode.pt
    """
    from stylecli.encoders.formats.unverified import check_unverified
    from stylecli.registry import weights

    entry = registry_entry(name)
    checked = check_unverified(entry, path) if entry.sha256 is None and path.is_file() else None
    dest = weights.import_file(name, path)
    if checked is None:
        typer.echo(f"{name}: installed {dest}", err=True)
    else:
        typer.echo(f"{name}: installed {dest}: {checked}, sha256 {weights.recorded_sha256(entry)} (recorded for "
                   "`stylecli weights verify`); not verified against a published hash (the registry has none)",
                   err=True)
