"""Atomic file creation: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_mode()


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (made on first write): its nearest existing ancestor is a file, not
    writable, or refuses a new file (a pseudo file system such as /proc, which grants root every access); None
    when they can. The probe file is removed at once."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    try:
        fd, name = tempfile.mkstemp(prefix=".stylecli-probe-", dir=probe)
    except OSError as exc:
        return f"{probe} takes no new files ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


@contextlib.contextmanager
def atomic_path(dest: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in dest's folder; on success it becomes `dest`, on failure it is removed.

    A reader never sees a half-written `dest`. With overwrite=False an existing `dest` is left alone and
    FileExistsError is raised after the write, even when `dest` appeared while the file was written.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; outputs should get the usual permissions
    try:
        yield tmp
        # again: a writer that replaces the file (safetensors' save_file writes its own 0600 temp file and renames
        # it over `tmp`) would otherwise leave a private output among 0644 ones
        os.chmod(tmp, _FILE_MODE)
        if overwrite:
            os.replace(tmp, dest)
        else:
            publish_new(tmp, dest)
    except OSError as exc:
        if isinstance(exc, FileExistsError) or exc.filename not in (None, str(tmp), tmp):
            raise
        # a full disk while writing: name the file the user asked for, not the temporary one (or none)
        raise OSError(exc.errno, exc.strerror or str(exc), str(dest)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def publish_new(tmp: Path, dest: Path) -> None:
    """Give the finished file `tmp` the name `dest` only if no file has it; else raise FileExistsError.

    A hard link does it in one step. File systems without hard links (exFAT, FAT, many FUSE and SMB mounts)
    refuse the link with EPERM, ENOTSUP, ENOSYS or EXDEV: the name is then claimed by an exclusive create and
    the finished file renamed over the claim, so an existing file is still never replaced (a reader may see
    an empty `dest` for that instant, and a crash in it leaves an empty file, never a partial one; skip
    checks use `is_complete`, which does not take that empty file for a finished output).
    """
    try:
        os.link(tmp, dest)
        return
    except FileExistsError:
        raise
    except OSError:
        pass  # no hard links on this file system
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)  # FileExistsError if taken
    try:
        claim = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            now = os.stat(dest)
            if (now.st_dev, now.st_ino, now.st_size) == (claim.st_dev, claim.st_ino, 0):
                os.unlink(dest)  # our empty claim, not someone else's file
        raise


def is_complete(path: Path | str) -> bool:
    """Whether `path` is a finished output that a skip check (--skip-existing) may keep: an existing file that
    is not empty. Every file written here has content; the one empty file these writes can leave (a crash
    between publish_new's exclusive create and its rename) is not complete, and a skip check must treat it as
    missing (and let it be replaced: a no-clobber check that only asks `exists()` would refuse it)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0
