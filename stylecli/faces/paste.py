"""Undoing the crop: paste an edited face back into the photo through the inverse of the alignment."""

from __future__ import annotations

import numpy as np


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


def paste_back(photo: np.ndarray, face: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Blend `face` (an aligned crop of any size, e.g. the generator output) into `photo` through the inverse
    of the alignment. Pixels where the mask is zero are returned bit-exact."""
    h, w = photo.shape[:2]
    size = face.shape[0]
    fwd = crop_to_image_affine(quad, size)  # crop -> image
    inv = np.linalg.inv(np.vstack([fwd, [0, 0, 1]]))[:2]  # image -> crop
    corners = np.asarray(quad)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, [w, h])
    if x0 >= x1 or y0 >= y1:
        return photo.copy()
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    v = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    mask = _bilinear(face_mask(size)[..., None], u, v)[..., 0]
    out = photo.copy()
    region = mask > 0
    if not region.any():
        return out
    colours = _bilinear(face.astype(np.float64), u, v)
    orig = photo[y0:y1, x0:x1].astype(np.float64)
    blended = orig + (colours - orig) * mask[..., None]
    patch = out[y0:y1, x0:x1]
    patch[region] = np.clip(np.rint(blended[region]), 0, 255).astype(np.uint8)
    return out


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
