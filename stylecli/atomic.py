"""Atomic file creation: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_mode()


@contextlib.contextmanager
def atomic_path(dest: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in dest's folder; on success it becomes `dest`, on failure it is removed.

    A reader never sees a half-written `dest`. With overwrite=False an existing `dest` is left alone and
    FileExistsError is raised after the write (os.link refuses to replace).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; outputs should get the usual permissions
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, dest)
        else:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: never clobber
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
