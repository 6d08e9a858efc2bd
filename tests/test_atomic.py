"""Atomic writes that never replace an existing file, also on file systems without hard links."""

import errno
import os

import numpy as np
import pytest

from stylecli.errors import InputError
from stylecli.files import atomic
from stylecli.files.images import write_png


@pytest.fixture(params=[errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV], ids=errno.errorcode.get)
def no_hard_links(request, monkeypatch):
    """os.link fails as it does on exFAT / FUSE / SMB mounts; the calls are counted."""
    calls = []

    def refuse(src, dst, *args, **kwargs):
        calls.append(dst)
        raise OSError(request.param, os.strerror(request.param), str(src), None, str(dst))

    monkeypatch.setattr(atomic.os, "link", refuse)
    return calls


def test_new_file_is_written_without_hard_links(tmp_path, no_hard_links):
    dest = tmp_path / "out.bin"
    with atomic.atomic_path(dest, overwrite=False) as tmp:
        tmp.write_bytes(b"new")
    assert no_hard_links, "the hard link was not tried first"
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert oct(dest.stat().st_mode & 0o777) == oct(atomic._FILE_MODE)


def test_existing_file_is_never_replaced_without_hard_links(tmp_path, no_hard_links):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError), atomic.atomic_path(dest, overwrite=False) as tmp:
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_file_appearing_during_the_write_is_kept_without_hard_links(tmp_path, no_hard_links):
    dest = tmp_path / "out.bin"
    with pytest.raises(FileExistsError), atomic.atomic_path(dest, overwrite=False) as tmp:
        tmp.write_bytes(b"mine")
        dest.write_bytes(b"theirs")  # another process wins the race for the name
    assert dest.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failed_rename_removes_only_its_own_claim(tmp_path, no_hard_links, monkeypatch):
    dest = tmp_path / "out.bin"

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="I/O error"), atomic.atomic_path(dest, overwrite=False) as tmp:
        tmp.write_bytes(b"mine")
    assert list(tmp_path.iterdir()) == []


def test_image_writes_keep_no_clobber_without_hard_links(tmp_path, no_hard_links):
    img = np.zeros((4, 4, 3), np.uint8)
    dest = write_png(img, tmp_path / "x.png")
    before = dest.read_bytes()
    with pytest.raises(InputError, match="exists"):
        write_png(img + 1, dest)
    assert dest.read_bytes() == before
    write_png(img + 1, dest, overwrite=True)
    assert dest.read_bytes() != before


KILLED_BEFORE_THE_RENAME = """
import errno, os, sys
from pathlib import Path
import numpy as np
from stylecli.files import atomic
from stylecli.files.images import write_png

def refuse(*args, **kwargs):
    raise OSError(errno.EPERM, "no hard links")

def killed(*args, **kwargs):
    os._exit(9)  # as SIGKILL: no cleanup runs

atomic.os.link, atomic.os.replace = refuse, killed
write_png(np.zeros((4, 4, 3), np.uint8), Path(sys.argv[1]))
"""


def test_a_kill_before_the_rename_leaves_no_complete_looking_output(tmp_path):
    import subprocess
    import sys

    dest = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-c", KILLED_BEFORE_THE_RENAME, str(dest)],
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 9
    assert dest.exists() and dest.stat().st_size == 0  # the exclusive create's claim
    assert not atomic.is_complete(dest)
    assert not atomic.is_complete(tmp_path / "missing.png") and not atomic.is_complete(tmp_path)
    write_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "done.png")
    assert atomic.is_complete(tmp_path / "done.png")
