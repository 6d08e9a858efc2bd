"""Reading a PyTorch checkpoint file safely: `torch.load(weights_only=True)`, so that a file can hold tensors and
plain values only, never code, with every way it can fail (missing, not a checkpoint, pickled code, corrupt) told in
one line. What the dict holds is the reader's business (encoders.formats, registry.networks, training)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from stylecli.errors import StyleCliError


class CheckpointError(StyleCliError):
    exit_code = 2  # a --checkpoint that cannot be read: a usage error


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True (memory-mapped where the file allows); errors become one line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_header(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (pre-zip) files cannot be memory-mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: refused to load: the file contains pickled Python objects or code, not only tensors "
                "(stylecli loads checkpoints with weights_only=True; re-save it as a plain tensor dict)"
            ) from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first_line(exc)})") from None
    except Exception as exc:  # arbitrary bytes make the unpickler fail in arbitrary ways
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, corrupt or truncated ({first_sentence(exc)}); "
            "copy or download it again"
        ) from None
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise CheckpointError(f"{path}: expected a dict with 'state_dict', 'opts', 'latent_avg'; got a {kind}")
    return obj


IMAGE_MAGIC = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image",
               b"RIFF": "a WebP image", b"BM": "a BMP image", b"%PDF": "a PDF document"}


def _check_header(path: Path) -> None:
    """A checkpoint is a zip archive (torch.save) or a pickle (the legacy format); say what else it is."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return
    what = next((name for magic, name in IMAGE_MAGIC.items() if head.startswith(magic)), None)
    if what:
        raise CheckpointError(f"{path}: not a checkpoint but {what}; give the .pt file of an e4e / pSp model")
    raise CheckpointError(f"{path}: not a PyTorch checkpoint, corrupt or truncated (no checkpoint header); "
                          "download it again or check it with `stylecli weights verify`")


def first_sentence(exc: BaseException) -> str:
    """The first sentence of an error's message, whole (library messages go on with advice for developers)."""
    return first_line(exc).split(". ")[0].rstrip(".")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
