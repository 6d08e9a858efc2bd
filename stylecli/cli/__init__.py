"""The `stylecli` command: a thin Typer shell over the library (no model math here).

The commands are registered here, explicitly and in their help order; the command modules only define them.
Errors end a command in one place (StyleCliGroup.main): a one-line message and an exit code, never a traceback
unless STYLECLI_DEBUG=1. Heavy modules (torch, the models) are imported inside the commands so `stylecli --help`
stays instant.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from stylecli import __version__
from stylecli.cli import cache_cmd, directions_cmd, env_cmd, evaluate_cmd, photos, serve_cmd, train_cmd, weights_cmd
from stylecli.cli.help_text import ClickException, ClickUsageError, PlainHelpGroup, usage_error_line
from stylecli.errors import StyleCliError, error_line, exit_code

DEBUG_VARIABLE = "STYLECLI_DEBUG"


def error_exit_code(exc: BaseException) -> int:
    """The one mapping of an exception that ends a command to its line on stderr and its exit code.

    StyleCliError: its message, its class's exit code; a usage error of the command line: one line naming the
    help to read, 2; Ctrl-C: 130; a file that cannot be written: the file and the likely fix, 1; anything else:
    `unexpected TYPE: message`, 1. STYLECLI_DEBUG=1 prints the traceback (of all but usage errors) before the
    line."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, typer.Abort):  # end of input at a prompt: as click says it
        print("Aborted!", file=sys.stderr, flush=True)
        return 1
    if isinstance(exc, ClickUsageError):  # the command line itself: no traceback to show
        if type(exc).show is not ClickUsageError.show:  # no arguments where some are needed: the help itself
            exc.show()
        else:
            print(usage_error_line(exc), file=sys.stderr, flush=True)
        return exc.exit_code
    if os.environ.get(DEBUG_VARIABLE) == "1":
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, StyleCliError):
        line, code = str(exc), exit_code(exc)
    elif isinstance(exc, OSError):  # a read-only cache, a full disk: one line naming the file and the fix
        line, code = os_error_line(exc), 1
    elif isinstance(exc, ClickException):  # click's other errors (a file option that cannot be opened)
        line, code = exc.format_message(), exc.exit_code
    else:
        hint = "" if os.environ.get(DEBUG_VARIABLE) == "1" else f" ({DEBUG_VARIABLE}=1 shows the traceback)"
        line, code = f"unexpected {type(exc).__name__}: {exc}{hint}", 1
    print(error_line(line), file=sys.stderr, flush=True)
    return code


OS_ERROR_FIXES = {
    errno.ENOSPC: "free some space on that disk, or choose another place",
    errno.EDQUOT: "free some space under your disk quota, or choose another place",
    errno.EROFS: "a read-only file system: choose another place",
    errno.EACCES: "check the folder's permissions, or choose another place",
    errno.EPERM: "check the folder's permissions, or choose another place",
}


def os_error_line(exc: OSError) -> str:
    """`FILE: what the system said (the fix)` for a file that could not be read or written."""
    fix = OS_ERROR_FIXES.get(exc.errno or 0, "check the folder's permissions and free space")
    return f"{exc.filename or 'a file'}: {exc.strerror or exc} ({fix})"


class StyleCliGroup(PlainHelpGroup):
    """The `stylecli` group: runs the command line with click's documented `standalone_mode=False` and maps
    whatever ends it through error_exit_code (so every front end, the test runner included, gets the same
    lines and codes)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0  # typer returns the code of a `typer.Exit`
        except (Exception, KeyboardInterrupt) as exc:  # SystemExit (a broken pipe, said by typer) passes
            code = error_exit_code(exc)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="stylecli",
    cls=StyleCliGroup,
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
    from stylecli.allocator import retain_freed_memory

    retain_freed_memory()  # large activations reuse warm heap memory (STYLECLI_KEEP_HEAP=0 to opt out)


# The commands, in their help order (single commands first, then the groups).
for command in (photos.invert, photos.align, photos.edit, photos.mix, evaluate_cmd.evaluate, serve_cmd.serve,
                train_cmd.train):
    app.command()(command)
app.add_typer(weights_cmd.weights_app, name="weights")
app.add_typer(cache_cmd.cache_app, name="cache")
app.add_typer(directions_cmd.directions_app, name="directions")
app.command()(env_cmd.env)


def main() -> None:
    app()
