"""Real alignment on scikit-image's astronaut photo (dlib), the FFHQ quad, and paste-back."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

pytest.importorskip("dlib")

from stylecli.errors import InputError  # noqa: E402
from stylecli.faces import (  # noqa: E402
    FaceAligner,
    align_crop,
    crop_to_image_affine,
    face_mask,
    face_quad,
    paste_back,
    select_faces,
)
from stylecli.faces.paste import _bilinear  # noqa: E402

ASTRO = data.astronaut()


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner()


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def synthetic_landmarks(eye_l, eye_r, mouth_l, mouth_r) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36:42] = eye_l
    lm[42:48] = eye_r
    lm[48] = mouth_l
    lm[54] = mouth_r
    return lm


def test_quad_of_an_upright_face_is_the_ffhq_square():
    lm = synthetic_landmarks((80, 100), (120, 100), (85, 150), (115, 150))
    quad = face_quad(lm)
    # eye_to_eye = 40, eye_to_mouth = 50: half-size = max(2 * 40, 1.8 * 50) = 90, centre = (100, 105)
    np.testing.assert_allclose(quad, [[10, 15], [10, 195], [190, 195], [190, 15]])


def test_quad_rotates_with_the_face():
    lm = synthetic_landmarks((80, 100), (120, 100), (85, 150), (115, 150))
    theta = np.deg2rad(30)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    quad = face_quad(lm @ rot.T)
    np.testing.assert_allclose(quad, face_quad(lm) @ rot.T, atol=1e-9)


def test_detects_the_astronaut_and_not_the_mission_patch(aligner):
    faces = aligner.detect(ASTRO)
    assert len(faces) == 1
    left, top, right, bottom = faces[0].box
    assert 150 < (left + right) / 2 < 290 and 60 < (top + bottom) / 2 < 200  # her face, not the patch
    jpeg_roundtrip = np.asarray(_jpeg(ASTRO))
    assert len(aligner.detect(jpeg_roundtrip)) == 1  # after JPEG the patch scores above 0 but stays out
    # Upsampling once finds the false face too; it is dropped for its low score.
    assert len(aligner.detect(ASTRO, upsample=1)) == 1


def _jpeg(arr):
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return Image.open(buf).convert("RGB")


def test_crop_puts_the_eyes_where_ffhq_puts_them(aligner):
    face = aligner.detect(ASTRO)[0]
    crop = align_crop(ASTRO, face.quad)
    assert crop.shape == (256, 256, 3)
    again = aligner.detect(crop, upsample=1)[0].landmarks
    eye_l, eye_r = again[36:42].mean(0), again[42:48].mean(0)
    assert abs(eye_l[1] - eye_r[1]) < 4  # level
    assert 55 < eye_r[0] - eye_l[0] < 75  # a quarter of the crop apart
    assert abs((eye_l[0] + eye_r[0]) / 2 - 128) < 6  # centred


def test_quad_transform_equals_direct_affine_sampling(aligner):
    """Independent check of the crop step: sample the photo through the affine map with numpy."""
    face = aligner.detect(ASTRO)[0]
    crop = align_crop(ASTRO, face.quad)
    a = crop_to_image_affine(face.quad, 256)
    vv, uu = np.mgrid[:256, :256].astype(np.float64)
    x = a[0, 0] * uu + a[0, 1] * vv + a[0, 2]
    y = a[1, 0] * uu + a[1, 1] * vv + a[1, 2]
    direct = np.clip(np.rint(_bilinear(ASTRO.astype(np.float64), x, y)), 0, 255)
    assert psnr(crop[8:-8, 8:-8], direct[8:-8, 8:-8]) > 45


def test_large_photo_takes_the_shrink_path_and_agrees(aligner):
    big = np.asarray(Image.fromarray(ASTRO).resize((2048, 2048), Image.Resampling.LANCZOS))
    face = aligner.detect(ASTRO)[0]
    crop_small = align_crop(ASTRO, face.quad)
    crop_big = align_crop(big, face.quad * 4)  # shrink = 2 here
    assert psnr(crop_small, crop_big) > 28


def test_face_at_the_border_takes_the_padding_path(aligner):
    face = aligner.detect(ASTRO)[0]
    shifted = ASTRO[60:, 120:]  # the quad now leaves the image at the top and left
    quad = face.quad - [120, 60]
    assert quad.min() < 0
    crop = align_crop(np.ascontiguousarray(shifted), quad)
    reference = align_crop(ASTRO, face.quad)
    centre = slice(64, 192)
    # Near the padded edges the recipe blurs towards the median; the face itself stays.
    assert psnr(crop[centre, centre], reference[centre, centre]) > 30


def test_no_face_is_a_clear_error_and_indices_are_checked(aligner):
    blank = np.full((300, 300, 3), 127, np.uint8)
    with pytest.raises(InputError, match="no face found in blank.png; pass --no-align"):
        select_faces(aligner.detect(blank), "largest", "blank.png")
    faces = aligner.detect(np.hstack([ASTRO, ASTRO[:, ::-1]]))
    assert len(faces) == 2
    assert [i for i, _ in select_faces(faces, "all", "x")] == [0, 1]
    with pytest.raises(InputError, match="only 2 face"):
        select_faces(faces, "5", "x")


def test_small_face_is_found_by_the_automatic_upsample(aligner):
    small = np.asarray(Image.fromarray(ASTRO).resize((200, 200), Image.Resampling.LANCZOS))
    assert len(aligner.detect(small, upsample=0)) == 0
    assert len(aligner.detect(small)) == 1


def test_mask_fades_out_before_the_crop_border():
    m = face_mask(256)
    assert m[133, 128] == 1.0
    assert m[:8].max() == 0 and m[-8:].max() == 0 and m[:, :8].max() == 0 and m[:, -8:].max() == 0
    assert np.abs(np.diff(m, axis=1)).max() < 0.1  # feathered: no hard edge


def test_paste_back_of_an_unedited_crop_restores_the_photo(aligner):
    face = aligner.detect(ASTRO)[0]
    crop = align_crop(ASTRO, face.quad)
    # An identity "generator": the crop upsampled to 1024 px, as a generator output would be.
    big = np.asarray(Image.fromarray(crop).resize((1024, 1024), Image.Resampling.BICUBIC))
    out = paste_back(ASTRO, big, face.quad)
    a = crop_to_image_affine(face.quad, 256)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]
    yy, xx = np.mgrid[:512, :512].astype(np.float64)
    u = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    v = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    mask = _bilinear(face_mask(256)[..., None], u, v)[..., 0]
    outside = mask == 0
    assert outside.sum() > 100_000 and np.array_equal(out[outside], ASTRO[outside])  # bit-exact outside
    inside = mask > 0
    assert psnr(out[inside], ASTRO[inside]) > 30  # nearly unchanged inside (two resamplings)
    changed = np.argwhere((out != ASTRO).any(axis=2))
    assert changed.size and mask[tuple(changed.T)].min() > 0  # nothing changed outside the mask


def test_paste_back_blends_an_edit_without_a_square_patch(aligner):
    face = aligner.detect(ASTRO)[0]
    edit = np.zeros((256, 256, 3), np.uint8)  # a drastic "edit": black face
    out = paste_back(ASTRO, edit, face.quad).astype(int)
    cx, cy = face.quad.mean(axis=0).astype(int)
    assert out[cy, cx].max() < 10  # the face is replaced
    orig = ASTRO.astype(float)
    alpha = np.where(orig > 30, 1 - out / np.maximum(orig, 1), np.nan)[cy, :, 0]  # the blend weight used
    steps = np.abs(np.diff(alpha))
    assert np.nanmax(steps) < 0.15  # a gradual fade, no seam
