"""Contact sheets and animations for comparing edits by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stylecli.files.atomic import atomic_path
from stylecli.files.images import check_free

LABEL_HEIGHT = 18


def _resize(img: np.ndarray, cell: int) -> np.ndarray:
    from PIL import Image

    if img.shape[:2] == (cell, cell):
        return img
    return np.asarray(Image.fromarray(img).resize((cell, cell), Image.Resampling.LANCZOS))


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], cell: int = 256,
                  columns: int | None = None) -> np.ndarray:
    """One row (or `columns` per row) of labelled cells, each image resized to cell x cell."""
    from PIL import Image, ImageDraw, ImageFont

    columns = columns or len(images)
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell + LABEL_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (img, label) in enumerate(zip(images, labels)):
        x, y = (i % columns) * cell, (i // columns) * (cell + LABEL_HEIGHT)
        sheet.paste(Image.fromarray(_resize(img, cell)), (x, y + LABEL_HEIGHT))
        draw.text((x + 4, y + 3), label, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


def row_sheet(rows: Sequence[tuple[str, Sequence[np.ndarray], Sequence[str]]], cell: int = 256) -> np.ndarray:
    """One row per (name, images, cell labels): the name in a left column wide enough for the longest one
    (never cut), each image resized to cell x cell under its label. Rows may have fewer images than others."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    pad = 6
    name_width = max((int(font.getlength(name)) for name, _, _ in rows), default=0) + 2 * pad
    columns = max((len(images) for _, images, _ in rows), default=0)
    height = cell + LABEL_HEIGHT
    sheet = Image.new("RGB", (name_width + columns * cell, len(rows) * height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, images, labels) in enumerate(rows):
        y = r * height
        draw.text((pad, y + LABEL_HEIGHT + cell // 2 - 6), name, fill=(0, 0, 0), font=font)
        for c, (img, label) in enumerate(zip(images, labels)):
            x = name_width + c * cell
            sheet.paste(Image.fromarray(_resize(img, cell)), (x, y + LABEL_HEIGHT))
            draw.text((x + 4, y + 3), label, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


def write_sheet(sheet: np.ndarray, dest: Path, overwrite: bool = False, info: dict | None = None) -> Path:
    """Write a sheet as PNG atomically, with `info` as JSON in a 'stylecli' text chunk (what each row shows)."""
    import json

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    check_free(dest, overwrite)
    meta = PngInfo()
    if info is not None:
        meta.add_text("stylecli", json.dumps(info))
    with atomic_path(dest, overwrite=overwrite) as tmp:
        Image.fromarray(np.ascontiguousarray(sheet)).save(tmp, format="PNG", pnginfo=meta)
    return dest


def write_gif(frames: Sequence[np.ndarray], dest: Path, overwrite: bool = False, frame_ms: int = 120,
              size: int = 256) -> Path:
    """A looping animation that plays the frames forth and back."""
    from PIL import Image

    check_free(dest, overwrite)
    pics = [Image.fromarray(_resize(f, size)) for f in frames]
    pics = pics + pics[-2:0:-1]
    with atomic_path(dest, overwrite=overwrite) as tmp:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:], duration=frame_ms, loop=0)
    return dest
