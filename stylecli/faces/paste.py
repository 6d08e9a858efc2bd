"""Undoing the crop: paste an edited face back into the photo through the inverse of the alignment."""

from __future__ import annotations

import numpy as np

from stylecli.errors import missing_package

BLENDS = ("feather", "seamless")


def crop_to_image_affine(quad: np.ndarray, crop_size: int) -> np.ndarray:
    """2x3 matrix mapping crop pixel centres (u, v) to original-image coordinates, from the quad's corners."""
    quad = np.asarray(quad, dtype=np.float64)
    ul, ll, ur = quad[0], quad[1], quad[3]
    a = np.column_stack([(ur - ul) / crop_size, (ll - ul) / crop_size])
    # Pillow's QUAD samples output pixel centre (u + 0.5) at ul + 0.5 + A (u + 0.5): the centre lands on
    # source coordinate p, whose pixel centre is p - 0.5 in index space.
    offset = ul + a @ np.array([0.5, 0.5])
    return np.column_stack([a, offset])


def face_mask(size: int, inner: float = 0.33, outer: float = 0.44) -> np.ndarray:
    """Feathered disc over the face of an aligned crop: 1 inside inner*size, 0 beyond outer*size (before the
    crop border at 0.5), smooth in between."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64) + 0.5
    r = np.hypot(xx - size * 0.5, yy - size * 0.52) / size
    t = np.clip((outer - r) / (outer - inner), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def face_region(shape: tuple[int, ...], quad: np.ndarray, size: int = 256) -> np.ndarray:
    """bool [H, W]: the photo pixels a paste-back through `quad` may change (where the face mask is above
    zero); every other pixel is returned bit-exact, with either blend."""
    region = np.zeros(shape[:2], dtype=bool)
    placed = _place(shape, quad, size)
    if placed is not None:
        (ys, xs), u, v = placed
        region[ys, xs] = _bilinear(face_mask(size)[..., None], u, v)[..., 0] > 0
    return region


def paste_back(photo: np.ndarray, face: np.ndarray, quad: np.ndarray, blend: str = "feather") -> np.ndarray:
    """Blend `face` (an aligned crop of any size, e.g. the generator output) into `photo` through the inverse
    of the alignment. Pixels where the mask is zero are returned bit-exact.

    blend="feather" (default): the edited pixels fade into the photo over the mask's soft ring; the face keeps
    exactly the colours the generator gave it. blend="seamless": OpenCV's Poisson cloning (`seamlessClone`)
    over the same region keeps the edited face's gradients and matches the photo at the region's edge, so no
    seam shows even when the generator's colours drift, at the price of pulling the face's overall colour
    towards the surrounding photo (a colour edit such as white hair or lipstick is partly undone). A face
    region under MIN_CLONE_SIDE pixels a side, too small to clone, is feathered.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, not {blend!r}")
    out = photo.copy()
    size = face.shape[0]
    placed = _place(photo.shape, quad, size)
    if placed is None:
        return out
    (ys, xs), u, v = placed
    mask = _bilinear(face_mask(size)[..., None], u, v)[..., 0]
    region = mask > 0
    if not region.any():
        return out
    colours = _bilinear(face.astype(np.float64), u, v)
    patch = out[ys, xs]
    if blend == "seamless":
        cloned = _poisson_clone(np.clip(np.rint(colours), 0, 255).astype(np.uint8), patch, region)
        if cloned is not None:
            patch[region] = cloned[region]
            return out
    orig = patch.astype(np.float64)
    blended = orig + (colours - orig) * mask[..., None]
    patch[region] = np.clip(np.rint(blended[region]), 0, 255).astype(np.uint8)
    return out


def _place(shape: tuple[int, ...], quad: np.ndarray, size: int):
    """The photo window the quad covers, and the crop coordinates (u, v) of each of its pixels; None if empty."""
    h, w = shape[:2]
    fwd = crop_to_image_affine(quad, size)  # crop -> image
    inv = np.linalg.inv(np.vstack([fwd, [0, 0, 1]]))[:2]  # image -> crop
    corners = np.asarray(quad)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, [w, h])
    if x0 >= x1 or y0 >= y1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    v = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    return (slice(y0, y1), slice(x0, x1)), u, v


MIN_CLONE_SIDE = 4  # seamlessClone fails (cv2.error) on regions whose bounding box is under 4 pixels a side


def _poisson_clone(src: np.ndarray, dst: np.ndarray, region: np.ndarray) -> np.ndarray | None:
    """cv2.seamlessClone of src into dst (same-size uint8 windows) over `region`, in place (no shift); None
    for a region too small to clone (a face a few pixels wide), which paste_back then feathers."""
    cv2 = import_cv2()

    mask = region.astype(np.uint8) * 255
    mask[[0, -1], :] = 0  # seamlessClone clears the outer ring of the mask itself; clear it first so that
    mask[:, [0, -1]] = 0  # the bounding box below is the one it uses
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw < MIN_CLONE_SIDE or bh < MIN_CLONE_SIDE:
        return None
    centre = (x + bw // 2, y + bh // 2)  # OpenCV places the box's top-left at centre - (w // 2, h // 2)
    return cv2.seamlessClone(np.ascontiguousarray(src), np.ascontiguousarray(dst), mask, centre, cv2.NORMAL_CLONE)


def import_cv2():
    """OpenCV, or an error saying how to install it (either opencv-python or opencv-python-headless works)."""
    try:
        import cv2
    except ImportError:
        raise missing_package("--blend seamless needs OpenCV", "faces", " (installs opencv-python-headless; an "
                              "installed opencv-python works as well)") from None
    return cv2


def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample img[H, W, C] at pixel-index coordinates (u = column, v = row); zero outside."""
    h, w = img.shape[:2]
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    out = np.zeros(u.shape + img.shape[2:], dtype=np.float64)
    for du, dv, wt in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)), (0, 1, (1 - fu) * fv), (1, 1, fu * fv)):
        uu, vv = u0 + du, v0 + dv
        ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
        out[ok] += wt[ok] * img[vv[ok], uu[ok]]
    return out
