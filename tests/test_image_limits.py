"""read_image's size limit: per call, from the header. Pillow's process-wide MAX_IMAGE_PIXELS, which it checks
again while loading TIFF, GIF and ICO frames, is off only while reads are in progress, and put back after."""

import threading
import types
import warnings

import numpy as np
import pytest
from PIL import Image
from skimage import data

from stylecli.errors import InputError
from stylecli.files.images import read_image

PILLOW_LIMIT = 10_000  # Pillow warns above this many pixels and refuses above twice as many
OURS = 50_000  # read_image's limit in these tests: allows both sizes below
ASTRO = data.astronaut()  # loaded before any test lowers Pillow's limit
SIZES = {"warned": (120, 100), "refused": (200, 150)}  # what Pillow would do to them by itself


class _WatchedModule(types.ModuleType):
    """PIL.Image, recording every assignment to MAX_IMAGE_PIXELS."""

    writes: list = []

    def __setattr__(self, name, value):
        if name == "MAX_IMAGE_PIXELS":
            _WatchedModule.writes.append(value)
        super().__setattr__(name, value)


@pytest.fixture
def pillow_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_LIMIT)
    _WatchedModule.writes = []
    Image.__class__ = _WatchedModule
    yield _WatchedModule.writes
    Image.__class__ = types.ModuleType


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    out = {}
    for zone, (w, h) in SIZES.items():
        pixels = np.ascontiguousarray(ASTRO[:h, :w])
        for ext in ("png", "jpg", "webp", "tif", "gif", "ico"):
            Image.fromarray(pixels).save(folder / f"{zone}.{ext}", **({"sizes": [(w, h)]} if ext == "ico" else {}))
            out[f"{zone}.{ext}"] = folder / f"{zone}.{ext}"
    return out


def off_then_restored(writes: list) -> bool:
    """Pillow's limit was turned off and put back, in pairs, and never set to anything else."""
    return writes == [None, PILLOW_LIMIT] * (len(writes) // 2) and len(writes) >= 2


@pytest.mark.parametrize("name", [f"{zone}.{ext}" for zone in SIZES
                                  for ext in ("png", "jpg", "webp", "tif", "gif", "ico")])
def test_allowed_images_over_pillows_limit_read_without_a_warning_or_changing_it(photos, pillow_limit, name):
    w, h = SIZES[name.split(".")[0]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels = read_image(photos[name], max_pixels=OURS).pixels
    assert pixels.shape == (h, w, 3)
    if name.endswith((".png", ".tif", ".ico")):  # lossless
        assert np.array_equal(pixels, ASTRO[:h, :w])
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert pillow_limit == [None, PILLOW_LIMIT], "Pillow's limit is off during the read only"
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_limit_is_checked_per_call_from_the_header(photos, pillow_limit, monkeypatch):
    with pytest.raises(InputError, match=r"200x150 is .* over the limit.*--max-pixels"):
        read_image(photos["refused.png"], max_pixels=20_000)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT, "a refused read puts Pillow's limit back too"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a program that turned Pillow's check off
    with pytest.raises(InputError, match="over the limit"):
        read_image(photos["warned.jpg"], max_pixels=11_999)
    assert read_image(photos["warned.jpg"], max_pixels=12_000).pixels.shape == (100, 120, 3)


def test_concurrent_reads_with_different_limits(photos, pillow_limit):
    """Worker threads with large and small limits: each read gets exactly its own limit's verdict."""
    wrong: list[str] = []
    start = threading.Barrier(6)

    def worker(k: int) -> None:
        start.wait()
        for i in range(30):
            name = list(photos)[(k + i) % len(photos)]
            strict = (k + i) % 3 == 0
            try:
                read_image(photos[name], max_pixels=1_000 if strict else OURS)
                if strict:
                    wrong.append(f"{name} read under a 1000-pixel limit")
            except InputError as exc:
                if not strict:
                    wrong.append(str(exc))
            except Exception as exc:  # noqa: BLE001 (a DecompressionBombWarning turned into an error)
                wrong.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []
    assert off_then_restored(pillow_limit) and Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT
