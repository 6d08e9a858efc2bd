"""The weights registry (weights.toml): resolve a name to a verified local file, downloading on first use.

Order: a copy in stylecli's cache (imported by hand or downloaded from a URL), a file embedded in an
installed package, the Hugging Face Hub (its cache, HF_HOME and HF_HUB_OFFLINE honored), an https URL.
Every file is checked against the registry's sha256 before first use; a mismatch is never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecli.atomic import atomic_path
from stylecli.cache import cache_dir
from stylecli.errors import StyleCliError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REGISTRY_FILE = Path(__file__).with_name("weights.toml")
CHUNK = 1 << 20


class WeightsError(StyleCliError):
    pass


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    what: str = ""
    kind: str = ""
    sha256: str | None = None
    size: int | None = None
    license: str = ""
    domain: str | None = None  # what a model or direction belongs to (ffhq, cars, horse, church)
    embedded: str | None = None
    sources: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def describe_sources(self) -> str:
        parts = []
        for s in self.sources:
            if "hf" in s:
                parts.append(f"hf://{s['hf']}/{s.get('path', self.file)}@{s.get('revision', 'main')}")
            elif "url" in s:
                parts.append(s["url"])
            elif "manual" in s:
                parts.append(f"{s['manual']} (by hand)")
        return ", ".join(parts) or "no known source"

    @property
    def manual_only(self) -> bool:
        return all("manual" in s for s in self.sources)


def registry_path() -> Path:
    """`STYLECLI_WEIGHTS_TOML` overrides the bundled registry (for private mirrors and tests)."""
    return Path(os.environ.get("STYLECLI_WEIGHTS_TOML") or REGISTRY_FILE)


def load_registry(path: Path | None = None) -> dict[str, Entry]:
    path = path or registry_path()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        name: Entry(name=name, sources=tuple(spec.pop("sources", ())), **spec) for name, spec in data.items()
    }


def get_entry(name: str, registry: dict[str, Entry] | None = None) -> Entry:
    registry = registry if registry is not None else load_registry()
    if name not in registry:
        import difflib

        close = difflib.get_close_matches(name, registry, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise WeightsError(f"unknown weights name {name!r}{hint}; `stylecli weights list` shows them all")
    return registry[name]


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


# --- verification, remembered per (real path, size, mtime) so a 1.2 GB file is hashed once -------------

def _stamp_file() -> Path:
    return cache_dir() / "verified.json"


def _stamp_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_stamps() -> dict[str, str]:
    try:
        return json.loads(_stamp_file().read_text())
    except (OSError, ValueError):
        return {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered across runs while the file is unchanged."""
    stamps = _read_stamps()
    key = _stamp_key(path)
    if key in stamps:
        return stamps[key]
    digest = sha256_file(path)
    stamps[key] = digest
    try:
        with atomic_path(_stamp_file()) as tmp:
            tmp.write_text(json.dumps(stamps, indent=0))
    except OSError:
        pass
    return digest


def verify(entry: Entry, path: Path) -> None:
    if entry.sha256 is None:
        return
    digest = file_sha256(path)
    if digest != entry.sha256:
        raise WeightsError(
            f"{path}: sha256 {digest[:16]}... does not match {entry.name}'s {entry.sha256[:16]}...; the file is "
            f"corrupt or a different version: delete it and run `stylecli weights pull {entry.name}`"
        )


# --- where a file may already be -------------------------------------------------------------------------

def local_copy(entry: Entry) -> Path:
    """Where imported and URL-downloaded files live: <cache>/weights/<name>/<file>."""
    return cache_dir() / "weights" / entry.name / entry.file


def embedded_path(entry: Entry) -> Path | None:
    """A file shipped in an installed package, found without importing the package."""
    if not entry.embedded:
        return None
    package, _, rel = entry.embedded.partition("/")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / rel
        if candidate.is_file():
            return candidate
    return None


def hub_cache_dir() -> Path:
    """The Hub cache, read at call time so HF_HOME / HF_HUB_CACHE set later are honored."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _from_hub(entry: Entry, source: dict[str, str]) -> Path:
    from huggingface_hub import hf_hub_download

    repo, filename, revision = source["hf"], source.get("path", entry.file), source.get("revision", "main")
    if hub_offline():
        raise FileNotFoundError(f"not in the Hub cache and HF_HUB_OFFLINE is set ({repo}/{filename})")
    return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=hub_cache_dir()))


def _from_url(entry: Entry, url: str, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download into the cache with resume (HTTP Range) and an atomic rename once the hash matches."""
    if hub_offline():
        raise FileNotFoundError("offline (HF_HUB_OFFLINE is set)")
    dest = local_copy(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".download")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "stylecli", **({"Range": f"bytes={have}-"} if have else {})}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (https URLs from the registry)
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        total = entry.size or (int(response.headers.get("Content-Length", 0)) + have or None)
        with open(part, "ab" if have else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                have += len(chunk)
                if progress:
                    progress(have, total)
    if entry.sha256 and sha256_file(part) != entry.sha256:
        part.unlink(missing_ok=True)
        raise WeightsError(f"{url}: downloaded file's sha256 does not match the registry; it was discarded")
    os.replace(part, dest)
    return dest


def _hub_cached(entry: Entry, source: dict[str, str]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(
        source["hf"], source.get("path", entry.file), cache_dir=hub_cache_dir(), revision=source.get("revision", "main")
    )
    return Path(hit) if isinstance(hit, str) else None


def locate(entry: Entry) -> Path | None:
    """Where the entry's file already is on this machine (no hashing, no network), or None."""
    for candidate in (local_copy(entry), embedded_path(entry)):
        if candidate is not None and candidate.is_file():
            return candidate
    for source in entry.sources:
        if "hf" in source and (hit := _hub_cached(entry, source)) is not None:
            return hit
    return None


def resolve(name: str, download: bool = True, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """A verified local path for a registry name, downloading it if needed and allowed."""
    entry = get_entry(name)
    found = locate(entry)
    if found is not None:
        verify(entry, found)
        return found
    failures: list[str] = []
    if download:
        for source in entry.sources:
            try:
                if "hf" in source:
                    path = _from_hub(entry, source)
                elif "url" in source:
                    path = _from_url(entry, source["url"], progress)
                else:
                    continue
            except WeightsError:
                raise
            except Exception as exc:  # network, HTTP and Hub errors: try the next source
                failures.append(f"{source.get('hf') or source.get('url')}: {str(exc).splitlines()[0][:160]}")
                continue
            verify(entry, path)
            return path
    raise WeightsError(unavailable_message(entry, failures))


def unavailable_message(entry: Entry, failures: list[str]) -> str:
    why = f" ({failures[0]})" if failures else ""
    if entry.manual_only:
        where = entry.sources[0]["manual"] if entry.sources else "its authors"
        return (
            f"{entry.name} ({entry.file}) cannot be downloaded automatically: get it from {where}, then run "
            f"`stylecli weights import {entry.name} PATH`"
        )
    return (
        f"{entry.name} ({entry.file}) is not available here and could not be downloaded{why}; it comes from "
        f"{entry.describe_sources()}: download it by hand and run `stylecli weights import {entry.name} PATH`"
    )


def import_file(name: str, source: Path) -> Path:
    """Check a hand-downloaded file against the registry and install it into the cache."""
    entry = get_entry(name)
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    if entry.sha256:
        digest = sha256_file(source)
        if digest != entry.sha256:
            raise WeightsError(
                f"{source}: sha256 {digest[:16]}... does not match {name}'s {entry.sha256[:16]}... "
                "(wrong file, or a corrupt or partial download); nothing was installed"
            )
    dest = local_copy(entry)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest


def status(entry: Entry) -> dict[str, Any]:
    """Presence of an entry (no hashing, no network) for `weights list`."""
    path = locate(entry)
    return {
        "name": entry.name, "file": entry.file, "what": entry.what, "size": entry.size,
        "license": entry.license, "sha256": entry.sha256, "source": entry.describe_sources(),
        "path": str(path) if path else None, "present": path is not None,
    }
