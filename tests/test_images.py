"""Reading real-world image files: orientation, modes, limits, and broken files."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

from stylecli.errors import InputError
from stylecli.files.images import read_image, read_latent, write_latent, write_png

ASTRO = data.astronaut()


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(ASTRO[:, :400])  # 512 rows x 400 cols
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = save(img, tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(path).pixels
    assert out.shape == (400, 512, 3)


@pytest.mark.parametrize("mode,note", [("L", None), ("CMYK", "CMYK"), ("P", None), ("I;16", "scaled to 8 bits")])
def test_modes_become_rgb(tmp_path, mode, note):
    src = Image.fromarray(ASTRO)
    if mode == "I;16":
        arr = (np.asarray(src.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr)
        ext = "png"
    else:
        img = src.convert(mode)
        ext = "jpg" if mode == "CMYK" else "png"
    loaded = read_image(save(img, tmp_path / f"m.{ext}"))
    assert loaded.pixels.shape == (512, 512, 3) and loaded.pixels.dtype == np.uint8
    if note:
        assert any(note in n for n in loaded.notes)
    if mode == "I;16":  # 16-bit grey scaled back to the same 8-bit grey
        grey = np.asarray(src.convert("L")).astype(int)
        assert np.abs(loaded.pixels[..., 0].astype(int) - grey).max() <= 1


def test_alpha_is_composited_on_white_and_said(tmp_path):
    rgba = np.dstack([ASTRO, np.full(ASTRO.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    loaded = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert (loaded.pixels[:10, :10] == 255).all()
    assert np.array_equal(loaded.pixels[20:, 20:], ASTRO[20:, 20:])
    assert any("white" in n for n in loaded.notes)


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.fromarray(ASTRO).convert("P"), Image.fromarray(255 - ASTRO).convert("P")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = read_image(path)
    assert any("first frame" in n for n in loaded.notes)
    assert abs(loaded.pixels.astype(int).mean() - ASTRO.mean()) < 5


def test_unicode_path_with_spaces(tmp_path):
    path = save(Image.fromarray(ASTRO), tmp_path / "photo d'été 01.png")
    assert read_image(path).pixels.shape == (512, 512, 3)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny file whose header claims width x height pixels (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def test_broken_files_give_one_line_errors(tmp_path):
    jpg = tmp_path / "ok.jpg"
    Image.fromarray(ASTRO).save(jpg, quality=90)
    cases = {
        "empty.jpg": b"",
        "truncated.jpg": jpg.read_bytes()[:3000],
        "text.jpg": b"hello, I am not a picture\n",
        "huge.png": png_header_only(200_000, 200_000),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as err:
            read_image(tmp_path / name)
        msg = str(err.value)
        assert name in msg and "\n" not in msg, msg
    with pytest.raises(InputError, match="megapixels.*--max-pixels"):
        read_image(tmp_path / "huge.png")
    with pytest.raises(InputError, match=r"over the limit of 0\.001 megapixels"):  # never "0 megapixels"
        read_image(jpg, max_pixels=1000)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_writes_are_atomic_and_never_clobber(tmp_path):
    dest = tmp_path / "x.png"
    write_png(ASTRO, dest)
    with pytest.raises(InputError, match="exists"):
        write_png(ASTRO[::-1], dest)
    assert np.array_equal(np.asarray(Image.open(dest)), ASTRO)
    write_png(ASTRO[::-1], dest, overwrite=True)
    assert np.array_equal(np.asarray(Image.open(dest)), ASTRO[::-1])
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_latent_files(tmp_path):
    code = np.random.default_rng(0).standard_normal((18, 512)).astype(np.float32)
    write_latent(code, tmp_path / "c.npy")
    assert np.array_equal(read_latent(tmp_path / "c.npy", 18), code)
    np.save(tmp_path / "b.npy", code[None])
    assert read_latent(tmp_path / "b.npy").shape == (18, 512)
    with pytest.raises(InputError, match="18 styles but the model uses 16"):
        read_latent(tmp_path / "c.npy", 16)
    np.save(tmp_path / "o.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(InputError, match="not a latent"):
        read_latent(tmp_path / "o.npy")
