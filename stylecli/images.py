"""Reading photos (EXIF, modes, size limits, broken files), atomic writes of images and latent files."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stylecli.atomic import atomic_path
from stylecli.errors import InputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels; --max-pixels raises it


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
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb guard follows ours (--max-pixels raises both)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise InputError(
                        f"{path}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over the limit of "
                        f"{max_pixels / 1e6:.0f} (raise it with --max-pixels if the file is trusted)"
                    )
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                    notes.append("animated image: used the first frame")
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img, notes)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"{path}: image is larger than the limit of {max_pixels / 1e6:.0f} megapixels "
            "(raise it with --max-pixels if the file is trusted)"
        ) from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: broken or truncated image ({str(exc).splitlines()[0][:120]})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), path, notes)


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
    if code.ndim != 2 or not np.issubdtype(code.dtype, np.floating):
        raise InputError(f"{path}: expected a float array [n_styles, 512], got {code.dtype} {list(code.shape)}")
    if n_styles is not None and code.shape[0] != n_styles:
        raise InputError(f"{path}: latent has {code.shape[0]} styles but the model uses {n_styles}")
    return code.astype(np.float32)


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
