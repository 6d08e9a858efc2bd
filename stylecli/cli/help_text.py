"""How the command line speaks: plain placeholders in `--help` (`INPUT...`, `--steps N`, never Typer's
`{INPUT}...` or `<list[str]>`) and usage errors on one line, like every other error.

Typer derives a placeholder from each parameter's Python type. The top-level group rewrites them once, when the
command tree is built: arguments show their name, options without an explicit metavar get one from their type.
"""

from __future__ import annotations

import sys
from pathlib import PurePath
from typing import Any

from typer._click.exceptions import UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

_TYPE_METAVARS = {int: "N", float: "X"}


class _PlainArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


def _option_metavar(option: TyperOption) -> str:
    described = option.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices) + "]"
    annotation = described.annotation
    if described.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    if described.is_path or (isinstance(annotation, type) and issubclass(annotation, PurePath)):
        return "PATH"
    return _TYPE_METAVARS.get(annotation, option.name.upper())


def plain_placeholders(command: Any) -> None:
    """Rewrite the placeholders of `command` and every subcommand, in place."""
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _PlainArgument
        elif isinstance(param, TyperOption) and not param.is_flag and not param.count and param.metavar is None:
            param.metavar = _option_metavar(param)
    for sub in getattr(command, "commands", {}).values():
        plain_placeholders(sub)


class PlainHelpGroup(TyperGroup):
    """The `stylecli` group: its command tree gets plain placeholders when it is built."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain_placeholders(self)


def _show_on_one_line(self: UsageError, file: Any = None) -> None:
    """One error line (cli.common.error_line) naming the help to read, instead of the usage block."""
    from stylecli.cli.common import error_line

    see = f" (see `{self.ctx.command_path} -h`)" if self.ctx is not None else ""
    print(error_line(self.format_message().rstrip(".")) + see, file=file or sys.stderr, flush=True)


UsageError.show = _show_on_one_line  # this process's command line only: stylecli's commands are its only ones
