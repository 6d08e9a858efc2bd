"""The exceptions the CLI turns into a one-line message (never a traceback), their exit codes, and the one form
of the error, note and warning lines on stderr.

Each class carries its exit code, by one rule: 0 all done; 1 some inputs failed, by their own fault (unreadable,
no face, a file that fails its own check); 2 usage or set-up that no input can fix (a bad option, an unknown model
or direction, a missing package, a model file that fails its hash at use): said once, on one line, before the
first input where it can be known, and ending the run where it cannot; 3 a download that failed (the network:
retrying may help; registry.weights.DownloadError); 130 interrupted. This module imports nothing of stylecli.
"""


class StyleCliError(Exception):
    """A user-facing failure: the message names the file and, where there is one, the fix."""

    exit_code: int = 1


class InputError(StyleCliError):
    """A problem with one input of a batch: the others still run."""


class UsageError(StyleCliError):
    """A bad option or option value: said once, exit 2, before any input is read."""

    exit_code = 2


class SetupError(StyleCliError):
    """What no input can fix (a missing optional package, a registry file that cannot be used): the run ends
    with this one line, exit 2, found before the first input wherever it can be."""

    exit_code = 2


def missing_package(what: str, extra: str, tail: str = "") -> SetupError:
    """The error for an optional package a chosen feature needs: `WHAT: pip install 'stylecli[EXTRA]'TAIL`."""
    return SetupError(f"{what}: pip install 'stylecli[{extra}]'{tail}")


def ends_run(exc: BaseException) -> bool:
    """Whether an error raised while a batch runs ends the whole run (exit 2 or 3: no other input can do
    better) rather than failing only the input in flight (exit 1)."""
    return isinstance(exc, StyleCliError) and exc.exit_code >= 2


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


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count in a message: `1 image`, `2 images`, `0 images` (`plural` for irregular nouns: 1 entry, 2 entries)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
