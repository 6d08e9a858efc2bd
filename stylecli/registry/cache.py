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


def converted_copies() -> list[dict]:
    """The fast-loading copies of checkpoints (`<cache>/converted/`): path, size, source, last use."""
    folder = cache_dir() / "converted"
    rows = []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        st = path.stat()
        source = "?"
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                source = (f.metadata() or {}).get("source", "?")
        except Exception:  # an unreadable copy is still listed (and cleaned)
            pass
        rows.append({"path": str(path), "size": st.st_size, "source": source,
                     "last_used": max(st.st_atime, st.st_mtime)})
    return rows


def clean_converted(older_than_s: float | None = None) -> list[dict]:
    """Remove converted copies (those unused for `older_than_s` seconds, or all); return what was removed."""
    import time

    now = time.time()
    removed = []
    for row in converted_copies():
        if older_than_s is None or now - row["last_used"] > older_than_s:
            Path(row["path"]).unlink(missing_ok=True)
            removed.append(row)
    return removed


def parse_age(spec: str) -> float:
    """'30d', '12h', '45m' -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    try:
        return float(spec[:-1]) * units[spec[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"expected a number and a unit (d, h, m, s), e.g. 30d; got {spec!r}") from None
