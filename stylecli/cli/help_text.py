"""How the command line speaks: plain placeholders in `--help` (`INPUT...`, `--steps N`, never Typer's
`{INPUT}...` or `<list[str]>`) and usage errors on one line, like every other error (usage_error_line; the
group's main() in cli/__init__ prints it).

Command lists show each command's whole first sentence (click cuts them with "...").

Typer derives a placeholder from each parameter's Python type. The top-level group rewrites them once, when the
command tree is built: arguments show their name, options without an explicit metavar get one from their type.
"""

from __future__ import annotations

import inspect
import re
from pathlib import PurePath
from typing import Any

from typer import BadParameter
from typer.core import TyperArgument, TyperGroup, TyperOption

from stylecli.errors import error_line


def _click_class(name: str) -> type[Exception]:
    """click's `UsageError` / `ClickException`, reached through typer's public BadParameter (typer ships its own
    copy of click in a private module; tests/test_cli_contract.py fails if these bases move)."""
    return next(c for c in BadParameter.__mro__ if c.__name__ == name)


ClickUsageError: Any = _click_class("UsageError")
ClickException: Any = _click_class("ClickException")

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


def first_sentence(help_text: str) -> str:
    """The first sentence of a command's help, whole and on one line: its summary in the command list (click would
    cut it at about 45 characters with "...")."""
    paragraph = inspect.cleandoc(help_text).split("\n\n")[0].replace("\b", "")
    text = " ".join(paragraph.split())
    return re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s", text, maxsplit=1)[0]  # "e.g. x" goes on


def whole_summaries(command: Any) -> None:
    """Give every subcommand of `command` (and theirs) its whole first sentence as its short help."""
    for sub in getattr(command, "commands", {}).values():
        if not sub.short_help and sub.help:
            sub.short_help = first_sentence(sub.help)
        whole_summaries(sub)


class PlainHelpGroup(TyperGroup):
    """The `stylecli` group: its command tree gets plain placeholders when it is built."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain_placeholders(self)
        whole_summaries(self)


def usage_error_line(exc: Any) -> str:
    """A usage error of the command line (click's UsageError) as one error line naming the help to read,
    instead of click's usage block."""
    see = f" (see `{exc.ctx.command_path} -h`)" if exc.ctx is not None else ""
    return error_line(exc.format_message().rstrip(".")) + see
