"""Turning command-line arguments into an ordered list of input files, and naming their outputs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from stylecli.images import IMAGE_EXTENSIONS


def expand_inputs(args: Iterable[str], stdin: TextIO | None = None) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted), '-' reads paths from stdin.

    Each file appears once, at its first position.
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
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in IMAGE_EXTENSIONS and not child.name.startswith("."):
                    add(child)
        else:
            add(path)

    for arg in args:
        if arg == "-":
            for line in (stdin or sys.stdin).read().splitlines():
                if line.strip() and line.strip() != "-":
                    add_arg(line.strip())
        else:
            add_arg(arg)
    return out


def output_stems(inputs: list[Path]) -> list[str]:
    """One output stem per input, unique within the batch: `photo`, then `photo-2` for a second `photo.*`."""
    counts: dict[str, int] = {}
    stems = []
    for p in inputs:
        n = counts.get(p.stem, 0) + 1
        counts[p.stem] = n
        stems.append(p.stem if n == 1 else f"{p.stem}-{n}")
    return stems
