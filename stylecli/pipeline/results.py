"""What the FaceEditor returns: typed results per photo, per face and per edited variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from stylecli.editing.base import Edit
    from stylecli.encoders.base import GeneratorWeights


@dataclass
class Photo:
    """A decoded photo: RGB uint8 pixels (EXIF orientation applied) and what was converted on the way."""

    pixels: np.ndarray  # uint8 [H, W, 3]
    source: Path | None = None  # None for an array given directly
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.pixels.shape[1], self.pixels.shape[0]


@dataclass(frozen=True)
class Variant:
    """One output of an edit: `steps` (edit, strength) applied together; strength None = the edit's default."""

    name: str
    steps: tuple[tuple[Edit, float | None], ...]


@dataclass
class EditedFace:
    """One variant of one face: its edited W+ code and the generator's image of it."""

    name: str
    code: np.ndarray  # float32 [n_styles, style_dim]
    image: np.ndarray | None  # uint8 [size, size, 3]


@dataclass
class FaceResult:
    """One face of a photo, from detection to its edited variants.

    box / landmarks / quad are in the photo's pixels (None when the photo was used as an aligned crop).
    """

    index: int  # 0 = largest face
    crop: np.ndarray  # the aligned crop the encoder saw, uint8 [256, 256, 3]
    code: np.ndarray  # float32 [n_styles, style_dim], mean latent included
    reconstruction: np.ndarray | None = None  # uint8 [size, size, 3]
    edits: list[EditedFace] = field(default_factory=list)
    box: tuple[int, int, int, int] | None = None  # left, top, right, bottom
    landmarks: np.ndarray | None = None  # [68, 2]
    quad: np.ndarray | None = None  # [4, 2]
    weights: GeneratorWeights | None = None  # per-photo generator overrides (HyperStyle, PTI)


@dataclass
class PhotoResult:
    """One photo: its pixels, conversion notes, faces, and per variant the photo with every face pasted back.

    error: why this photo gave no faces (unreadable, no face found, --faces index out of range), else None;
    one photo's error never stops the others. pixels is None when the photo could not be read.
    """

    source: Path | None
    pixels: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    faces: list[FaceResult] = field(default_factory=list)
    pasted: dict[str, np.ndarray] = field(default_factory=dict)  # variant name -> photo
    error: str | None = None
