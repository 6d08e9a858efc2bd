"""Heap policy for model runs: keep freed memory for reuse instead of handing it back to the OS.

glibc serves allocations above 32 MB with fresh `mmap`s and returns them on free, so every large activation
of the generator (up to 134 MB at 1024 px) starts as untouched pages that the kernel must fault in and zero,
on every image. Serving them from the heap and never trimming it makes later images reuse warm memory: a
quarter (fast path) to over half (textbook formulation) of the synthesis time on a 2-core CPU (see
bench/compare.py), for a few hundred MB of retained heap.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def retain_freed_memory() -> bool:
    """Apply the policy once per process (glibc only; elsewhere a no-op). Returns whether it is in force.

    `STYLECLI_KEEP_HEAP=0` in the environment leaves the allocator as it is.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("STYLECLI_KEEP_HEAP", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (present only in glibc)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # Never use mmap for allocations (glibc still falls back to it if the heap cannot grow); never trim.
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
