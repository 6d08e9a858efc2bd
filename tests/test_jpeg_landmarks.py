"""JPEG photos: landmarks on dlib's decoding (as the official alignment finds them), the crop from Pillow's."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

dlib = pytest.importorskip("dlib")

from stylecli.faces import FaceAligner, align_crop, landmark_pixels_for  # noqa: E402
from stylecli.files.images import read_image  # noqa: E402

ASTRO = data.astronaut()


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner()


@pytest.fixture
def jpeg(tmp_path):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(ASTRO).save(path, quality=90, subsampling="4:2:0")
    return path


def test_landmarks_come_from_dlibs_decoding_of_a_jpeg(aligner, jpeg):
    pil = read_image(jpeg).pixels
    official = dlib.load_rgb_image(str(jpeg))
    assert official.shape == pil.shape and not np.array_equal(official, pil), "the decoders should differ"

    lp = landmark_pixels_for(jpeg, pil)
    assert lp is not None and np.array_equal(lp, official)
    face = aligner.detect(pil, landmark_pixels=lp)[0]
    on_dlib, on_pillow = aligner.detect(official)[0], aligner.detect(pil)[0]
    np.testing.assert_array_equal(face.landmarks, on_dlib.landmarks)
    np.testing.assert_array_equal(face.quad, on_dlib.quad)
    assert not np.array_equal(face.landmarks, on_pillow.landmarks), "this JPEG moves landmarks between decoders"
    # The crop is cut from Pillow's pixels through dlib's quad, as the official code does.
    crop = align_crop(pil, face.quad)
    assert not np.array_equal(crop, align_crop(official, face.quad))


def test_other_files_keep_pillows_pixels(tmp_path, jpeg):
    png = tmp_path / "astronaut.png"
    Image.fromarray(ASTRO).save(png)
    assert landmark_pixels_for(png, read_image(png).pixels) is None

    renamed = tmp_path / "really_a_png.jpg"  # the content decides, not the name
    renamed.write_bytes(png.read_bytes())
    assert landmark_pixels_for(renamed, read_image(renamed).pixels) is None

    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180 to display: same size, but read_image turned it and dlib would not
    rotated = tmp_path / "rotated.jpg"
    Image.fromarray(ASTRO).save(rotated, quality=90, exif=exif)
    assert landmark_pixels_for(rotated, read_image(rotated).pixels) is None
    exif[0x0112] = 1  # "as stored": dlib's decoding applies
    upright = tmp_path / "upright.jpg"
    Image.fromarray(ASTRO).save(upright, quality=90, exif=exif)
    assert landmark_pixels_for(upright, read_image(upright).pixels) is not None

    assert landmark_pixels_for(jpeg, read_image(jpeg).pixels[:500]) is None  # not the same picture
    assert landmark_pixels_for(tmp_path / "missing.jpg", ASTRO) is None


def test_detect_refuses_landmark_pixels_of_another_size(aligner):
    with pytest.raises(ValueError, match="differ"):
        aligner.detect(ASTRO, landmark_pixels=ASTRO[:500])


def test_the_align_command_finds_landmarks_on_dlibs_decoding(tmp_path, jpeg):
    """End to end: `stylecli align` on a 4:2:0 JPEG records the quad of dlib's decoding in its sidecar."""
    import json

    from typer.testing import CliRunner

    from stylecli.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["align", str(jpeg), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    recorded = np.asarray(json.loads((out / "astronaut.align.json").read_text())["quad"])
    on_dlib = FaceAligner().detect(dlib.load_rgb_image(str(jpeg)))[0]
    on_pillow = FaceAligner().detect(read_image(jpeg).pixels)[0]
    np.testing.assert_allclose(recorded, on_dlib.quad, atol=1e-3)
    assert np.abs(recorded - on_pillow.quad).max() > 1e-2, "this JPEG moves the quad between decoders"
