"""Contact sheets and animations for comparing edits by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stylecli.atomic import atomic_path
from stylecli.images import check_free

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
