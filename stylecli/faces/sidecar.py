"""The alignment sidecar (NAME.align.json) that lets `edit --paste-back` work later from a saved latent.

The photo's path is stored relative to the sidecar's own folder (so the pair can be used from any working
folder, or moved together with the photo), with the absolute path as a fallback; a photo on another Windows
drive than the sidecar has no relative path, and both fields then hold the absolute one. A sidecar written for
another machine (the browser editor's downloads) holds only the photo's file name, as if beside the sidecar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.errors import InputError
from stylecli.faces.detect import Face
from stylecli.files.atomic import atomic_path
from stylecli.files.images import check_free
from stylecli.samples import SAMPLES, sample_name, sample_path


def write_sidecar(dest: Path, source: Path, image_size: tuple[int, int], index: int, face: Face,
                  overwrite: bool = False, found: int | None = None, name_only: bool = False) -> Path:
    """`found`: how many faces of the photo were written in the same run (lets a resume name them exactly).
    name_only: record the photo by its file name alone, to sit beside the sidecar (no path of this machine)."""
    check_free(dest, overwrite)
    if name_only:
        paths = {"source": Path(source).name}
    else:
        absolute = Path(source).resolve()
        try:
            stored = Path(os.path.relpath(absolute, Path(dest).resolve().parent)).as_posix()
        except ValueError:  # on another Windows drive than the sidecar: no relative path exists
            stored = str(absolute)
        paths = {"source": stored, "source_absolute": str(absolute)}
        sample = sample_name(absolute)
        if sample is not None:  # a packaged sample photo: found again wherever the package moves
            paths["sample"] = sample
    data = {**paths, "image_size": list(image_size), "face_index": index,
            **({"faces_found": found} if found is not None else {}), **face.to_dict()}
    with atomic_path(dest, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    return dest


def same_alignment(path: Path, face: Face) -> bool:
    """Whether the sidecar `path` describes the same alignment as `face` (as write_sidecar would store it): the
    same crop quad and landmarks. Paths and counts, which vary by command, do not count; False if unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    expected = json.loads(json.dumps(face.to_dict()))
    return isinstance(data, dict) and all(data.get(k) == expected[k] for k in ("quad", "landmarks"))


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        data["quad"] = np.asarray(data["quad"], dtype=np.float64).reshape(4, 2)
        return data
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: unreadable alignment sidecar ({exc})") from None


def sidecar_photo(path: Path, data: dict[str, Any]) -> Path:
    """The photo a sidecar describes: its path relative to the sidecar's folder, else the absolute path it
    was written with (else the path as stored, for sidecars of older versions); a sample photo's
    sidecar names the sample (`sample`), found in the installed package."""
    if data.get("sample") in SAMPLES:
        return sample_path(data["sample"])
    stored = Path(data["source"])
    candidates = [Path(path).parent / stored] if not stored.is_absolute() else []
    if data.get("source_absolute"):
        candidates.append(Path(data["source_absolute"]))
    candidates.append(stored)
    return next((c for c in candidates if c.is_file()), candidates[0])
