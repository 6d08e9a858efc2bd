"""The alignment sidecar (NAME.align.json) that lets `edit --paste-back` work later from a saved latent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.atomic import atomic_path
from stylecli.errors import InputError
from stylecli.faces.detect import Face
from stylecli.images import check_free


def write_sidecar(dest: Path, source: Path, image_size: tuple[int, int], index: int, face: Face,
                  overwrite: bool = False) -> Path:
    check_free(dest, overwrite)
    data = {"source": str(source), "image_size": list(image_size), "face_index": index, **face.to_dict()}
    with atomic_path(dest, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    return dest


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        data["quad"] = np.asarray(data["quad"], dtype=np.float64).reshape(4, 2)
        return data
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: unreadable alignment sidecar ({exc})") from None
