"""paste_back's blends: a feathered mask (default) and OpenCV's Poisson cloning; the photo outside the face's
region stays bit-exact with both."""

import numpy as np
import pytest
from skimage import data

from stylecli.faces import align_crop, crop_to_image_affine, paste_back
from stylecli.faces.paste import face_region

pytest.importorskip("cv2")

ASTRO = data.astronaut()
QUAD = np.array([[130.0, 40.0], [130.0, 300.0], [390.0, 300.0], [390.0, 40.0]])  # her face, upright
SHIFT = 30


def edited():
    """The aligned crop with a uniform colour shift: what a generator's colour drift looks like."""
    crop = align_crop(ASTRO, QUAD)
    return np.clip(crop.astype(int) + SHIFT, 0, 255).astype(np.uint8)


def disc_around_the_face(shape, size=256) -> np.ndarray:
    """Independent of paste.py's windowing: the face mask's outer circle in photo pixels, plus 2 pixels."""
    centre = crop_to_image_affine(QUAD, size) @ np.array([size * 0.5 - 0.5, size * 0.52 - 0.5, 1.0])
    radius = 0.44 * np.hypot(*(QUAD[3] - QUAD[0])) + 2
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(xx - centre[0], yy - centre[1]) <= radius


@pytest.mark.parametrize("blend", ["feather", "seamless"])
def test_pixels_outside_the_face_region_are_bit_exact(blend):
    out = paste_back(ASTRO, edited(), QUAD, blend=blend)
    region = face_region(ASTRO.shape, QUAD, 256)
    assert region.any() and not region.all()
    assert np.array_equal(out[~region], ASTRO[~region])
    changed = (out != ASTRO).any(axis=-1)
    assert changed.sum() > 0.5 * region.sum()
    assert not (changed & ~disc_around_the_face(ASTRO.shape)).any()


def test_feather_keeps_the_edit_seamless_matches_the_photo():
    face = edited()
    feather, seamless = paste_back(ASTRO, face, QUAD), paste_back(ASTRO, face, QUAD, blend="seamless")
    assert np.array_equal(feather, paste_back(ASTRO, face, QUAD, blend="feather"))  # the default
    region = face_region(ASTRO.shape, QUAD, 256)
    err = {name: np.abs(img.astype(int) - ASTRO.astype(int))[region].mean()
           for name, img in (("feather", feather), ("seamless", seamless))}
    # Poisson cloning keeps the edit's gradients but takes its level from the photo at the region's edge: a
    # uniform shift is undone; the feathered mask keeps the generator's colours where the mask is 1.
    assert err["seamless"] < 4 < SHIFT * 0.5 < err["feather"]


def test_unknown_blend_is_refused():
    with pytest.raises(ValueError, match="feather, seamless"):
        paste_back(ASTRO, edited(), QUAD, blend="poisson")


@pytest.mark.parametrize("side", [2.0, 3.0, 3.5])
def test_seamless_on_a_face_a_few_pixels_wide_is_feathered(side):
    """OpenCV's cloning fails (cv2.error) on a region of 2 or 3 pixels; such a face is feathered instead."""
    quad = np.array([[100.0, 100.0], [100.0, 100.0 + side], [100.0 + side, 100.0 + side], [100.0 + side, 100.0]])
    face = np.full((256, 256, 3), 200, np.uint8)
    out = paste_back(ASTRO, face, quad, blend="seamless")
    assert np.array_equal(out, paste_back(ASTRO, face, quad, blend="feather"))
    assert (out != ASTRO).any()


def test_missing_opencv_names_both_packages(monkeypatch):
    from stylecli.errors import StyleCliError

    monkeypatch.setitem(__import__("sys").modules, "cv2", None)  # `import cv2` raises ImportError
    with pytest.raises(StyleCliError, match=r"stylecli\[faces\].*opencv-python-headless.*opencv-python works"):
        paste_back(ASTRO, edited(), QUAD, blend="seamless")
