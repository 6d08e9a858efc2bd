"""stylecli cache list | clean: the converted (fast-loading) copies of checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from stylecli.cli.common import JsonOpt, print_rows

cache_app = typer.Typer(
    help="List and clean the converted (fast-loading) copies of checkpoints in stylecli's cache.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@cache_app.command("list")
def cache_list(as_json: JsonOpt = False) -> None:
    """Show the converted copies of checkpoints (one per --checkpoint file used): size and source.

    Example: stylecli cache list
    """
    import time

    from stylecli.registry.cache import converted_copies

    rows = converted_copies()
    print_rows(rows, {"source": lambda r: r["source"], "size": lambda r: f"{r['size'] / 1e6:.0f} MB",
                      "last used": lambda r: time.strftime("%Y-%m-%d", time.localtime(r["last_used"])),
                      "path": lambda r: r["path"]}, as_json)


@cache_app.command("clean")
def cache_clean(
    older_than: Annotated[str | None, typer.Option("--older-than", metavar="AGE",
                                                   help="Only copies unused for this long, e.g. 30d or 12h.")] = None,
) -> None:
    """Remove converted copies of checkpoints (they are rebuilt on the next use of their checkpoint).

    Example: stylecli cache clean --older-than 30d
    """
    from stylecli.registry.cache import clean_converted, parse_age

    try:
        age = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    removed = clean_converted(age)
    typer.echo(f"removed {len(removed)} converted copies ({sum(r['size'] for r in removed) / 1e6:.0f} MB)", err=True)
