"""The weights registry (weights.toml): resolve a name to a verified local file, downloading on first use.

Order: a copy in stylecli's cache (imported by hand or downloaded from a URL), a file embedded in an
installed package, the Hugging Face Hub (its cache, HF_HOME and HF_HUB_OFFLINE honored), an https URL.
Every file is checked against the registry's sha256 before first use; a mismatch is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecli.errors import StyleCliError
from stylecli.files.atomic import atomic_path
from stylecli.registry.cache import cache_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _bundled_registry() -> Path:
    """weights.toml: the copy that every build (setup.py: wheel, sdist, `pip install .`) puts inside the package,
    else, in a source checkout (an editable install, PYTHONPATH), which has no such copy, the top-level file.
    The copy is looked for first so that an installed stylecli never reads an unrelated weights.toml that sits
    beside it (`pip install --target` into a project folder)."""
    package = Path(__file__).resolve().parent.parent  # stylecli/
    packaged = package / "weights.toml"
    return packaged if packaged.is_file() else package.parent / "weights.toml"


REGISTRY_FILE = _bundled_registry()
CHUNK = 1 << 20


class WeightsError(StyleCliError):
    """A registry file that cannot be used (an unknown name, a file that fails its hash at use, a file that must
    be imported by hand): set-up that no input can fix, exit 2."""

    exit_code = 2


class DownloadError(WeightsError):
    """Every download source of a registry file failed (network, HTTP, offline): retrying may help, exit 3."""

    exit_code = 3


class RejectedFileError(WeightsError):
    """A file given to `weights import` that fails its check: that input's own fault, exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    what: str = ""
    kind: str = ""
    sha256: str | None = None
    # what the publisher pins where it gives no full sha256 (torchvision: 8 hex digits in the file name); the
    # full sha256 is recorded at the first download or import, as for an import without a published hash
    sha256_prefix: str | None = None
    size: int | None = None
    license: str = ""
    domain: str | None = None  # what a model or direction belongs to (ffhq, cars, horse, church)
    # a checkpoint's encoder kind (a row of encoders.kinds: e4e, restyle, hyperstyle): its options are checked
    # before the file is downloaded
    encoder: str | None = None
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
    _remember(path, digest, stamps)
    return digest


def _remember(path: Path, digest: str, stamps: dict[str, str] | None = None) -> None:
    """Note a file's sha256 for `file_sha256` (a cache that cannot be written only costs a re-hash)."""
    stamps = _read_stamps() if stamps is None else stamps
    stamps[_stamp_key(path)] = digest
    try:
        with atomic_path(_stamp_file()) as tmp:
            tmp.write_text(json.dumps(stamps, indent=0))
    except OSError:
        pass


def verify(entry: Entry, path: Path) -> None:
    """Raise WeightsError unless `path` has the registry's sha256 or, for an entry without one, the sha256
    recorded when the file was imported (see `recorded_sha256`)."""
    if entry.sha256 is None:
        recorded = recorded_sha256(entry, path)
        if entry.sha256_prefix and not file_sha256(path).startswith(entry.sha256_prefix):
            raise WeightsError(
                f"{path}: its sha256 does not start with {entry.sha256_prefix}, as {entry.name}'s published "
                f"file's does; delete it and run `stylecli weights pull {entry.name}`"
            )
        if recorded is not None and file_sha256(path) != recorded:
            raise WeightsError(
                f"{path}: changed since it was imported (its sha256 is no longer the {recorded[:16]}... recorded "
                f"then); import it again with `stylecli weights import {entry.name} PATH`"
            )
        return
    digest = file_sha256(path)
    if digest != entry.sha256:
        raise WeightsError(
            f"{path}: sha256 {digest[:16]}... does not match {entry.name}'s {entry.sha256[:16]}...; the file is "
            f"corrupt or a different version: delete it and run `stylecli weights pull {entry.name}`"
        )


# --- hashes recorded at import, for entries the registry has no sha256 for ------------------------------

def record_file(entry: Entry) -> Path:
    """`<cache>/weights/<name>/<file>.sha256`: the sha256 of the imported copy beside it (one hex line)."""
    dest = local_copy(entry)
    return dest.with_name(dest.name + ".sha256")


def recorded_sha256(entry: Entry, path: Path | None = None) -> str | None:
    """The sha256 recorded when the entry's file was imported (None: no record, or `path` is not the imported
    copy). Only a stand-in for a published hash: it proves the file unchanged since the import, not genuine."""
    if path is not None and Path(path) != local_copy(entry):
        return None
    try:
        text = record_file(entry).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


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


HUB_RETRY_WAITS = (2.0, 6.0)  # seconds before the second and third metadata check after a transient failure


def _from_hub(entry: Entry, source: dict[str, str]) -> Path:
    """Download from the Hub. A metadata request first, retried only after a transient failure (HTTP 429 or
    5xx, a timeout): an unreachable Hub (connection refused, unknown host) fails this source at once with one
    reason, instead of huggingface_hub's retry loop (five waits up to 8 s, each logged)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    repo, filename, revision = source["hf"], source.get("path", entry.file), source.get("revision", "main")
    if hub_offline():
        raise FileNotFoundError(f"not in the Hub cache and HF_HUB_OFFLINE is set ({repo}/{filename})")
    url = hf_hub_url(repo, filename, revision=revision)
    with _quiet_hub_log():
        for wait in (*HUB_RETRY_WAITS, None):
            try:
                meta = get_hf_file_metadata(url)
                break
            except Exception as exc:
                if wait is None or not _transient(exc):
                    raise
                time.sleep(wait)
        announce(entry, f"hf://{repo}/{filename}", entry.size or getattr(meta, "size", None), hub_cache_dir())
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=hub_cache_dir()))


def _transient(exc: BaseException) -> bool:
    """An HTTP 429 or 5xx answer, or a timeout (httpx's or requests'): worth asking again. A refused connection,
    an unknown host or offline mode is not."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status == 429 or 500 <= status < 600
    return isinstance(exc, TimeoutError) or any("Timeout" in cls.__name__ for cls in type(exc).__mro__)


_hub_log_lock = threading.Lock()
_hub_log_users = 0
_hub_log_level = 0


@contextlib.contextmanager
def _quiet_hub_log() -> Iterator[None]:
    """Keep huggingface_hub's warnings (retries, HTTP errors) off the terminal while it downloads: each failed
    source is reported once, by `resolve`. Its logger is process-wide: the first of concurrent downloads
    raises its level, the last one out restores it."""
    import logging

    global _hub_log_users, _hub_log_level
    log = logging.getLogger("huggingface_hub")
    with _hub_log_lock:
        if _hub_log_users == 0:
            _hub_log_level = log.level
            log.setLevel(logging.ERROR)
        _hub_log_users += 1
    try:
        yield
    finally:
        with _hub_log_lock:
            _hub_log_users -= 1
            if _hub_log_users == 0:
                log.setLevel(_hub_log_level)


def _from_url(entry: Entry, url: str, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download into the cache with resume (HTTP Range) and an atomic rename once the hash matches.

    An earlier `.download` partial is checked first: one that is already the whole file (a kill came before
    the rename) is finished without a request; one that is too long or wrong is restarted; a resumed file
    whose hash does not match is fetched once more from the start.
    """
    dest = local_copy(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".download")
    have = _usable_partial(entry, part)
    if have is None:  # already complete and verified: no request, so also when offline
        return _install(entry, part, dest)
    if hub_offline():
        raise FileNotFoundError("offline (HF_HUB_OFFLINE is set)")
    for start in (have, 0) if have else (0,):
        _fetch(url, part, start, entry.size, progress or _progress_bar(entry), entry)
        if not _pinned(entry) or _pin_matches(entry, sha256_file(part)):
            return _install(entry, part, dest)
        part.unlink(missing_ok=True)
    raise WeightsError("the downloaded file's sha256 does not match the registry; it was discarded")


def _pinned(entry: Entry) -> bool:
    return bool(entry.sha256 or entry.sha256_prefix)


def _pin_matches(entry: Entry, digest: str) -> bool:
    """A download's sha256 against the registry's: the full hash, else the published prefix."""
    return digest == entry.sha256 if entry.sha256 else digest.startswith(entry.sha256_prefix or "")


def _install(entry: Entry, part: Path, dest: Path) -> Path:
    """Rename a verified download into place; for an entry with no full sha256 in the registry, record the
    file's (as an import does), so that `weights verify` and every later use can tell if it changes."""
    if entry.sha256 is None:
        digest = sha256_file(part)
        with atomic_path(record_file(entry), overwrite=True) as record:
            record.write_text(digest + "\n", encoding="ascii")
    os.replace(part, dest)
    if entry.sha256 is None:
        _remember(dest, digest)
    return dest


def human_size(size: int | None) -> str:
    if not size:
        return "size unknown"
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


_quiet = False  # no download note or progress bar (the CLI's -q)


def quiet_downloads(quiet: bool = True) -> None:
    """Silence (or restore) the download note and the progress bars of this process, the Hub's included."""
    global _quiet
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    _quiet = quiet
    (disable_progress_bars if quiet else enable_progress_bars)()


def announce(entry: Entry, where: str, size: int | None, into: Path) -> None:
    """Say on stderr, once a source answers and before its bytes come, what is downloaded and how big it is."""
    from stylecli.errors import note_line

    if _quiet:
        return
    print(note_line(f"downloading {entry.name} ({entry.file}, {human_size(size)}) from {where} into {into}; "
                    "once, it is kept there"), file=sys.stderr, flush=True)


def _progress_bar(entry: Entry) -> Callable[[int, int | None], None]:
    """A download progress bar on stderr (huggingface_hub's tqdm: HF_HUB_DISABLE_PROGRESS_BARS=1 hides it, as
    it hides the Hub's own), closed when the download is complete."""
    state: dict[str, Any] = {}

    def update(have: int, total: int | None) -> None:
        if _quiet:
            return
        bar = state.get("bar")
        if bar is None:
            from huggingface_hub.utils import tqdm

            bar = state["bar"] = tqdm(total=total, initial=have, unit="B", unit_scale=True, file=sys.stderr,
                                      desc=entry.file, leave=False)
        bar.update(have - bar.n)
        if total is not None and have >= total:
            bar.close()

    return update


def _usable_partial(entry: Entry, part: Path) -> int | None:
    """Bytes of an interrupted download to resume from (0: none), or None when `part` is already the complete,
    verified file. A partial that cannot be a prefix of the file (longer than it, or complete but wrong) is
    removed."""
    have = part.stat().st_size if part.exists() else 0
    if not have or (entry.size is not None and have < entry.size):
        return have
    if _pinned(entry) and (entry.size is None or have == entry.size) and _pin_matches(entry, sha256_file(part)):
        return None
    if entry.size is None:
        return have  # nothing says it is complete: resume; a server answering 416 makes _fetch start over
    part.unlink()
    return 0


def _fetch(url: str, part: Path, have: int, size: int | None,
           progress: Callable[[int, int | None], None] | None, entry: Entry | None = None) -> None:
    """Append the bytes from `have` on to `part` (all of them when have is 0 or the server ignores Range)."""
    headers = {"User-Agent": "stylecli", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)  # noqa: S310
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:
            raise
        part.unlink(missing_ok=True)  # the partial is at least as long as the file, yet not it: start over
        return _fetch(url, part, 0, size, progress, entry)
    with response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        total = size or (int(response.headers.get("Content-Length", 0)) + have or None)
        if entry is not None:
            announce(entry, url + (f" (resuming at {human_size(have)})" if have else ""), total, part.parent)
        with open(part, "ab" if have else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                have += len(chunk)
                if progress:
                    progress(have, total)


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
                verify(entry, path)
            except WeightsError as exc:  # includes a file whose sha256 does not match: try the next source
                failures.append(f"{_describe(entry, source)}: {exc}")
                continue
            except Exception as exc:  # network, HTTP and Hub errors: try the next source
                failures.append(f"{_describe(entry, source)}: {_reason(exc)}")
                continue
            return path
    message = unavailable_message(entry, failures)
    raise DownloadError(message) if failures else WeightsError(message)  # tried and failed / nothing to try


def unavailable_message(entry: Entry, failures: list[str]) -> str:
    """What to do, then one line per source tried and why it failed."""
    if entry.manual_only:
        where = entry.sources[0]["manual"] if entry.sources else "its authors"
        return (
            f"{entry.name} ({entry.file}) cannot be downloaded automatically: get it from {where}, then run "
            f"`stylecli weights import {entry.name} PATH`"
        )
    head = (
        f"{entry.name} ({entry.file}) is not available here and could not be downloaded; it comes from "
        f"{entry.describe_sources()}: download it by hand and run `stylecli weights import {entry.name} PATH`"
    )
    return "\n".join([head, *(f"  tried {line}" for line in failures)])


def _describe(entry: Entry, source: dict[str, str]) -> str:
    if "hf" in source:
        return f"hf://{source['hf']}/{source.get('path', entry.file)}"
    return source.get("url", "?")


def _reason(exc: BaseException) -> str:
    """One short line for a failed download: the exception's kind and its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else "no details"
    return f"{type(exc).__name__}: {text}"[:200]


def import_file(name: str, source: Path) -> Path:
    """Check a hand-downloaded file against the registry and install it into the cache."""
    entry = get_entry(name)
    source = Path(source)
    if not source.is_file():
        raise RejectedFileError(f"{source}: no such file")
    if entry.sha256:
        digest = sha256_file(source)
        if digest != entry.sha256:
            raise RejectedFileError(
                f"{source}: sha256 {digest[:16]}... does not match {name}'s {entry.sha256[:16]}... "
                "(wrong file, or a corrupt or partial download); nothing was installed"
            )
    if entry.sha256 is None and entry.sha256_prefix and not sha256_file(source).startswith(entry.sha256_prefix):
        raise RejectedFileError(f"{source}: its sha256 does not start with {entry.sha256_prefix}, as {name}'s "
                                "published file's does (wrong file, or a corrupt or partial download); nothing "
                                "was installed")
    dest = local_copy(entry)
    digest = entry.sha256
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
        if entry.sha256 is None:  # record what was imported, so that `weights verify` can tell if it changes
            digest = sha256_file(tmp)
            with atomic_path(record_file(entry)) as record:
                record.write_text(digest + "\n", encoding="ascii")
        else:
            record_file(entry).unlink(missing_ok=True)
    if digest is not None:
        _remember(dest, digest)  # the first use does not hash the file again
    return dest


def default_pull_names(registry: dict[str, Entry] | None = None) -> list[str]:
    """What the default commands may need, for `weights pull` with no name: the default model, the landmark
    model, the named directions (InterFaceGAN's and GANSpace's FFHQ PCA), LPIPS's AlexNet (--tune, evaluate) and
    ArcFace (evaluate's id metric); those of a private registry (STYLECLI_WEIGHTS_TOML) that has them."""
    from stylecli.constants import DEFAULT_MODEL, INTERFACEGAN_NAMES

    registry = registry if registry is not None else load_registry()
    wanted = [DEFAULT_MODEL, "dlib_landmarks68", *INTERFACEGAN_NAMES, "ffhq_pca", "lpips_alexnet", "arcface_ir_se50"]
    return [name for name in wanted if name in registry]


def status(entry: Entry) -> dict[str, Any]:
    """Presence of an entry (no hashing, no network) for `weights list`."""
    path = locate(entry)
    return {
        "name": entry.name, "file": entry.file, "what": entry.what, "size": entry.size,
        "license": entry.license, "sha256": entry.sha256, "sha256_prefix": entry.sha256_prefix,
        "source": entry.describe_sources(),
        "path": str(path) if path else None, "present": path is not None,
    }
