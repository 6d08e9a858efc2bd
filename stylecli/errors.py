"""The exceptions the CLI turns into a one-line message (never a traceback), their exit codes, and the one form
of the error, note and warning lines on stderr.

Each class carries its exit code: 2 for usage errors (bad options, devices, directions, checkpoints given on the
command line: said once, before any input is read), 1 for the rest. This module imports nothing of stylecli.
"""


class StyleCliError(Exception):
    """A user-facing failure: the message names the file and, where there is one, the fix."""

    exit_code: int = 1


class InputError(StyleCliError):
    """A problem with one input of a batch: the others still run."""


class UsageError(StyleCliError):
    """A bad option or option value: said once, exit 2, before any input is read."""

    exit_code = 2


def exit_code(exc: BaseException) -> int:
    """The exit code of a stylecli error (its class's `exit_code`); 1 for any other exception."""
    return exc.exit_code if isinstance(exc, StyleCliError) else 1


def error_line(message: str) -> str:
    """The one form of an error on stderr, whoever reports it: `stylecli: error: MESSAGE`."""
    return f"stylecli: error: {message}"


def note_line(message: str) -> str:
    """`stylecli: note: MESSAGE`: something the user may want to know; nothing failed."""
    return f"stylecli: note: {message}"


def warning_line(message: str) -> str:
    """`stylecli: warning: MESSAGE`: the work went on, but the result may not be what was wanted."""
    return f"stylecli: warning: {message}"
