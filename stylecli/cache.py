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
