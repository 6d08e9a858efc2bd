"""The heap policy: large blocks come from the (reused) heap instead of fresh mmaps. Checked in child processes,
because the policy is process-wide."""

import ctypes
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="the policy applies to glibc only (mallinfo2 needs glibc 2.33 or later)",
)

CHILD = """
import ctypes, sys
from stylecli.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
applied = retain_freed_memory()
import torch
before = libc.mallinfo2().hblkhd
block = torch.empty(64 * 2**20, dtype=torch.uint8)
block.fill_(1)
mmapped = libc.mallinfo2().hblkhd - before
del block
print(applied, mmapped >= 64 * 2**20)
"""


def run_child(env_value: str | None) -> str:
    import os

    env = dict(os.environ)
    env.pop("STYLECLI_KEEP_HEAP", None)
    if env_value is not None:
        env["STYLECLI_KEEP_HEAP"] = env_value
    return subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, env=env).stdout


@pytest.mark.slow
def test_large_blocks_come_from_the_heap_once_applied():
    assert run_child(None).split() == ["True", "False"]


@pytest.mark.slow
def test_opt_out_keeps_the_default_allocator():
    assert run_child("0").split() == ["False", "True"]
