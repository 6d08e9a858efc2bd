"""The one exception type the CLI turns into a one-line message (never a traceback)."""


class StyleCliError(Exception):
    """A user-facing failure: the message names the file and, where there is one, the fix."""


class InputError(StyleCliError):
    """A problem with one input of a batch: the others still run."""
