"""Turning command-line arguments into an ordered list of input files (their output names: stylecli.naming)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from stylecli.files.images import images_in


def expand_inputs(args: Iterable[str], stdin: TextIO | None = None, null_separated: bool = False,
                  latents: bool = False, notes: list[str] | None = None) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted), '-' reads paths from stdin
    (one per line, or NUL-separated). Each file appears once, at its first position.

    latents: folders also give their .npy latents (`edit`), which win over the images made from them
    (folder_inputs); `notes` then gets one line saying how many such images were left out.
    """
    out: list[Path] = []
    seen: set[str] = set()
    left_out: list[Path] = []

    def add(p: Path) -> None:
        key = str(p.resolve()) if p.exists() else str(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    def add_arg(arg: str) -> None:
        path = input_path(arg)
        if path.is_dir():
            for child in folder_inputs(path, left_out) if latents else images_in(path):
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
    if left_out and notes is not None:
        n = len(left_out)
        notes.append(f"{n} image{'s' if n != 1 else ''} made from a .npy latent beside {'them' if n != 1 else 'it'} "
                     f"(such as {left_out[0]}) left out: the latents are edited instead")
    return out


def folder_inputs(folder: Path, left_out: list[Path] | None = None) -> list[Path]:
    """A folder's images and .npy latents (recursively, sorted, hidden files skipped), where a latent wins over
    the images made from it (invert's NAME_aligned.png, NAME_inversion.png, NAME_stepK.png beside NAME.npy, an
    edited NAME.png beside NAME.npy): those are outputs, not inputs, and go to `left_out`."""
    from stylecli.naming import is_latent, latents_rendered_as

    found = [p for p in sorted(Path(folder).rglob("*")) if p.is_file() and not p.name.startswith(".")
             and is_latent(p)]
    latent_set = set(found)
    for image in images_in(folder):
        if any(candidate in latent_set for candidate in latents_rendered_as(image)):
            if left_out is not None:
                left_out.append(image)
        else:
            found.append(image)
    return sorted(found)


def input_path(arg: str) -> Path:
    """An input argument as a path: `sample:NAME` is a sample photo shipped in the package (stylecli.samples);
    an unknown sample name is a usage error that lists the names."""
    from stylecli.samples import UnknownSample, resolve_sample

    try:
        return resolve_sample(arg)
    except UnknownSample as exc:
        from stylecli.errors import UsageError

        raise UsageError(str(exc)) from None


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
