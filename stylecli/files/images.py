"""Reading photos (EXIF, modes, size limits, broken files), atomic writes of images and latent files."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.constants import DEFAULT_MAX_PIXELS
from stylecli.errors import InputError
from stylecli.files.atomic import atomic_path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def images_in(folder: Path) -> list[Path]:
    """The images under a folder, searched recursively, sorted; hidden files skipped."""
    return [p for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]


@dataclass
class LoadedImage:
    pixels: np.ndarray  # uint8 [H, W, 3], EXIF orientation applied
    path: Path
    notes: list[str] = field(default_factory=list)  # conversions the user may want to know about


def read_image(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file to RGB uint8, or raise InputError naming the file and the fix."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    notes: list[str] = []
    try:
        with open_image(path) as img:
            w, h = img.size  # from the header: nothing is decoded yet
            if w * h > max_pixels:
                raise InputError(_too_large(path, f"{w}x{h} is {_megapixels(w * h)}, over", max_pixels))
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                notes.append("animated image: used the first frame")
            img.load()
            if img.size[0] * img.size[1] > max_pixels:  # a GIF frame may grow the canvas while it loads
                raise InputError(_too_large(path, "image is larger than", max_pixels))
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img, notes)
    except InputError:
        raise
    except Image.DecompressionBombError:  # only if other code set Pillow's global limit while this read ran
        raise InputError(f"{path}: image is larger than Pillow allows (PIL.Image.MAX_IMAGE_PIXELS = "
                         f"{Image.MAX_IMAGE_PIXELS}); another part of this program lowered that limit") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: broken or truncated image ({str(exc).splitlines()[0][:120]})") from None
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), path, notes)


_pillow_limit_lock = threading.Lock()
_pillow_reads = 0  # reads in progress (worker threads), under the lock
_pillow_saved_limit: int | None = None  # Pillow's MAX_IMAGE_PIXELS before the first of them began


@contextlib.contextmanager
def _pillow_checks_off() -> Iterator[None]:
    """Pillow's own size checks (its process-wide MAX_IMAGE_PIXELS, checked when it opens an image, again while
    it loads TIFF, GIF and ICO frames, and in crop) off while stylecli reads an image whose size it checks
    itself, per call, from the header; the limit is put back when the last concurrent read ends.

    Per-call limits set on that global would race between worker threads (one thread's restore makes another's
    allowed image warn or fail): the global is off while any read is in progress, and restored to its value
    from before the first of them (unless other code set it meanwhile, which is then left as that code set it).
    """
    global _pillow_reads, _pillow_saved_limit
    from PIL import Image

    with _pillow_limit_lock:
        if _pillow_reads == 0:
            _pillow_saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_reads += 1
    try:
        yield
    finally:
        with _pillow_limit_lock:
            _pillow_reads -= 1
            if _pillow_reads == 0 and Image.MAX_IMAGE_PIXELS is None:
                Image.MAX_IMAGE_PIXELS = _pillow_saved_limit


def _too_large(path: Path, what: str, limit: int) -> str:
    fix = "raise it with --max-pixels if the file is trusted"
    return f"{path}: {what} the limit of {_megapixels(limit)} ({fix})"


def _megapixels(n: int) -> str:
    """100000000 -> '100 megapixels', 10**10 -> '10000 megapixels', 65536 -> '0.0655 megapixels' (never a
    misleading 0, never an exponent), 12 -> '12 pixels'."""
    if n < 1000:
        return f"{n} pixel{'s' * (n != 1)}"
    value = n / 1e6
    return f"{value:.3g} megapixels" if value < 100 else f"{value:.0f} megapixels"


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """`PIL.Image.open(path)` (lazy: only the header is read), with Pillow's process-wide size checks off while
    the image is open: read_image checks the header's size against its own per-call limit instead."""
    from PIL import Image

    with _pillow_checks_off(), Image.open(path) as img:
        yield img


def _to_rgb(img, notes: list[str]):
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if arr.max() > 255 else 255.0
        notes.append(f"{img.mode} image: scaled to 8 bits")
        return Image.fromarray(np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparent pixels composited on white")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    elif img.mode in ("L", "1"):
        notes.append("grayscale image converted to RGB")
    elif img.mode == "P":
        notes.append("palette image converted to RGB")
    elif img.mode != "RGB":
        notes.append(f"{img.mode} image converted to RGB")
    return img.convert("RGB")


def write_png(pixels: np.ndarray, dest: Path, overwrite: bool = False) -> Path:
    """Write uint8 [H, W, 3] as PNG atomically; refuse to replace a file unless overwrite."""
    from PIL import Image

    check_free(dest, overwrite)
    with atomic_path(dest, overwrite=overwrite) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
    return dest


def write_latent(code: np.ndarray, dest: Path, overwrite: bool = False) -> Path:
    """Write a W+ code as .npy float32 [n_styles, style_dim], atomically."""
    check_free(dest, overwrite)
    with atomic_path(dest, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(code, dtype=np.float32))
    return dest


def read_latent(path: Path | str, n_styles: int | None = None) -> np.ndarray:
    """A latent .npy written by `invert`: float32 [n_styles, style_dim] (a leading batch of 1 is dropped)."""
    path = Path(path)
    try:
        code = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a latent .npy file ({str(exc).splitlines()[0][:120]})") from None
    if code.ndim == 3 and code.shape[0] == 1:
        code = code[0]
    if code.ndim == 1 or (code.ndim == 2 and code.shape[0] == 1):  # [512] or [1, 512]: one vector for all layers
        raise InputError(f"{path}: a direction's shape {list(np.shape(code))}, not a latent [n_styles, 512] "
                         f"written by `invert`; to edit along it, pass --direction {path}")
    if code.ndim != 2 or not np.issubdtype(code.dtype, np.floating):
        raise InputError(f"{path}: expected a float array [n_styles, 512], got {code.dtype} {list(code.shape)}")
    if n_styles is not None and code.shape[0] != n_styles:
        raise InputError(f"{path}: latent has {code.shape[0]} styles but the model uses {n_styles}")
    return code.astype(np.float32)


def same_pixels(path: Path, pixels: np.ndarray) -> bool:
    """Whether the image file `path` decodes to exactly `pixels` (uint8 [H, W, 3]); False if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode != "RGB" or img.size != (pixels.shape[1], pixels.shape[0]):
                return False
            return bool(np.array_equal(np.asarray(img), pixels))
    except (OSError, ValueError, SyntaxError):
        return False


def check_free(dest: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless overwrite."""
    if not overwrite and dest.exists():
        raise InputError(f"{dest}: exists (pass --overwrite to replace it)")


OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def write_image(pixels: np.ndarray, dest: Path, overwrite: bool = False) -> Path:
    """Write uint8 [H, W, 3] atomically in the format of dest's extension (PNG, JPEG at quality 95, WebP)."""
    from PIL import Image

    fmt = OUTPUT_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise InputError(f"{dest}: unknown image extension; use one of {', '.join(OUTPUT_FORMATS)}")
    check_free(dest, overwrite)
    with atomic_path(dest, overwrite=overwrite) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format=fmt, **({"quality": 95} if fmt != "PNG" else {}))
    return dest
