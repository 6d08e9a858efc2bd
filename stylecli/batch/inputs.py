"""Turning command-line arguments into an ordered list of input files (their output names: stylecli.naming)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from stylecli.files.images import images_in


def expand_inputs(args: Iterable[str], stdin: TextIO | None = None, null_separated: bool = False) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted), '-' reads paths from stdin
    (one per line, or NUL-separated). Each file appears once, at its first position.
    """
    out: list[Path] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = str(p.resolve()) if p.exists() else str(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    def add_arg(arg: str) -> None:
        path = Path(arg)
        if path.is_dir():
            for child in images_in(path):
                add(child)
        else:
            add(path)

    for arg in args:
        if arg == "-":
            text = (stdin or sys.stdin).read()
            entries = text.split("\0") if null_separated else text.splitlines()
            for entry in entries:
                entry = entry if null_separated else entry.strip()
                if entry and entry != "-":
                    add_arg(entry)
        else:
            add_arg(arg)
    return out


def parse_shard(spec: str) -> tuple[int, int]:
    """'3/8' -> (3, 8); K is 1-based."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"expected K/N such as 3/8, got {spec!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: K must be between 1 and N")
    return k, n


def shard_of(path: Path, n: int) -> int:
    """1-based shard of a path: a hash of the path as given, so it never depends on the rest of the list
    (run every shard with the same arguments from the same folder)."""
    digest = hashlib.sha1(path.as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def take_shard(paths: list[Path], k: int, n: int) -> list[Path]:
    return [p for p in paths if shard_of(p, n) == k]


def unreadable(path: Path) -> str | None:
    """Why an input cannot be read at all (missing, a folder, no permission), or None: checked before any model
    is loaded, so a typo fails at once."""
    import os

    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path}: is a folder, not an image"
    if not os.access(path, os.R_OK):
        return f"{path}: not readable (permission denied)"
    return None
