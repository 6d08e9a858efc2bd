"""Where stylecli keeps downloaded and converted files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`STYLECLI_CACHE` when set, else the platform's user cache folder (e.g. ~/.cache/stylecli)."""
    env = os.environ.get("STYLECLI_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("stylecli", appauthor=False))


def kept_in_cache(path: Path) -> bool:
    """Whether `path` is a file stylecli keeps in its cache (`<cache>/weights/`: imported and URL-downloaded
    files), which needs no converted copy beside it."""
    try:
        return Path(path).resolve().is_relative_to((cache_dir() / "weights").resolve())
    except OSError:
        return False


UNFINISHED_AGE_S = 3600  # a partial copy older than this is left over from a killed process, not being written


def converted_copies() -> list[dict]:
    """The fast-loading copies of checkpoints (`<cache>/converted/`): path, size, source, last use; with copies
    left unfinished by a killed process (source `(unfinished copy)`), so that `cache clean` removes them too."""
    import time

    folder = cache_dir() / "converted"
    rows = []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            st = path.stat()
        except FileNotFoundError:  # replaced or removed by another process meanwhile
            continue
        source = "?"
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                source = (f.metadata() or {}).get("source", "?")
        except Exception:  # an unreadable copy is still listed (and cleaned)
            pass
        rows.append({"path": str(path), "size": st.st_size, "source": source,
                     "last_used": max(st.st_atime, st.st_mtime)})
    for path in sorted(folder.glob(".*.safetensors.*.part")) if folder.is_dir() else []:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if time.time() - st.st_mtime > UNFINISHED_AGE_S:
            rows.append({"path": str(path), "size": st.st_size, "source": "(unfinished copy)",
                         "last_used": st.st_mtime})
    return rows


def copies_to_clean(older_than_s: float | None = None) -> list[dict]:
    """The converted copies `cache clean` would remove: those unused for `older_than_s` seconds, or all."""
    import time

    now = time.time()
    return [row for row in converted_copies() if older_than_s is None or now - row["last_used"] > older_than_s]


def remove_copies(rows: list[dict]) -> list[dict]:
    """Delete the listed copies; return those that were deleted (one already gone is not counted)."""
    removed = []
    for row in rows:
        try:
            Path(row["path"]).unlink()
        except FileNotFoundError:
            continue
        removed.append(row)
    return removed


def clean_converted(older_than_s: float | None = None) -> list[dict]:
    """Remove converted copies (those unused for `older_than_s` seconds, or all); return what was removed."""
    return remove_copies(copies_to_clean(older_than_s))


def parse_age(spec: str) -> float:
    """'30d', '12h', '45m' -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    try:
        return float(spec[:-1]) * units[spec[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"expected a number and a unit (d, h, m, s), e.g. 30d; got {spec!r}") from None
