"""stylecli cache list | clean: the converted (fast-loading) copies of checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from stylecli.cli.common import JsonOpt, fail, print_rows

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


def _interactive() -> bool:
    """Whether there is a person to ask: stdin and stderr (where the question goes) are terminals."""
    import sys

    return sys.stdin.isatty() and sys.stderr.isatty()


@cache_app.command("clean")
def cache_clean(
    older_than: Annotated[str | None, typer.Option("--older-than", metavar="AGE",
                                                   help="Only copies unused for this long, e.g. 30d or 12h.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (for scripts).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
) -> None:
    """Remove converted copies of checkpoints (they are rebuilt on the next use of their checkpoint): lists them
    (path, size, total) and asks first; without a terminal it needs --yes.

    \b
    Examples:
      stylecli cache clean --dry-run
      stylecli cache clean --older-than 30d
      stylecli cache clean --yes
    """
    from stylecli.registry.cache import copies_to_clean, parse_age, remove_copies

    try:
        age = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    if not (yes or dry_run or _interactive()):
        raise fail("cache clean: no terminal to ask whether to delete; pass --yes to delete without asking, or "
                   "--dry-run to list what would be deleted", 2)
    rows = copies_to_clean(age)
    total = sum(r["size"] for r in rows) / 1e6
    if not rows:
        typer.echo("nothing to remove" + (f" (no converted copy unused for {older_than})" if age else ""), err=True)
        return
    for row in rows:
        typer.echo(f"{row['size'] / 1e6:8.0f} MB  {row['path']}  (of {row['source']})", err=True)
    what = f"{len(rows)} converted {'copy' if len(rows) == 1 else 'copies'} ({total:.0f} MB)"
    if dry_run:
        typer.echo(f"would remove {what}; nothing was removed (--dry-run)", err=True)
        return
    if not yes and not typer.confirm(f"remove {what}?", default=False, err=True):
        typer.echo("nothing was removed", err=True)
        return
    removed = remove_copies(rows)
    typer.echo(f"removed {len(removed)} converted {'copy' if len(removed) == 1 else 'copies'} "
               f"({sum(r['size'] for r in removed) / 1e6:.0f} MB)", err=True)
