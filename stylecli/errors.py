"""The exceptions the CLI turns into a one-line message (never a traceback), and their exit codes."""


class StyleCliError(Exception):
    """A user-facing failure: the message names the file and, where there is one, the fix."""


class InputError(StyleCliError):
    """A problem with one input of a batch: the others still run."""


class UsageError(StyleCliError):
    """A bad option or option value: said once, exit 2, before any input is read."""


def exit_code(exc: BaseException) -> int:
    """2 for usage errors (bad options, devices, directions, checkpoints given on the command line), else 1."""
    from stylecli.checkpoint import CheckpointError
    from stylecli.devices import DeviceError
    from stylecli.editing.base import EditError

    return 2 if isinstance(exc, (UsageError, DeviceError, EditError, CheckpointError)) else 1
