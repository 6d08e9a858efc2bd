"""FFHQ face alignment (dlib detector + 68 landmarks -> oriented quad -> crop) and its inverse for paste-back.

The crop follows the FFHQ / e4e recipe step by step (shrink, crop with border, reflect padding blurred
towards the edges, quad transform), with Pillow's filters under their current names (LANCZOS for the old
ANTIALIAS).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.atomic import atomic_path
from stylecli.errors import InputError, StyleCliError
from stylecli.images import check_free

ALIGNED_SIZE = 256
# dlib's detection score: real faces score about 0.5 and up, false detections (e.g. the patch on the
# astronaut's suit) near 0. Weaker detections are dropped unless nothing else was found.
MIN_FACE_SCORE = 0.3


@dataclass
class Face:
    """One detected face: its detector box, 68 landmarks and FFHQ quad, all in original-image pixels."""

    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    landmarks: np.ndarray  # [68, 2]
    quad: np.ndarray  # [4, 2]: upper-left, lower-left, lower-right, upper-right corners of the crop

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": round(self.score, 4), "quad": self.quad.round(3).tolist(),
                "landmarks": self.landmarks.astype(int).tolist()}


def face_quad(landmarks: np.ndarray) -> np.ndarray:
    """The oriented square from eyes and mouth corners (FFHQ): x = eye_to_eye - rot90(eye_to_mouth), scaled
    to max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), centred at eye_avg + 0.1 eye_to_mouth."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_crop(pixels: np.ndarray, quad: np.ndarray, output_size: int = ALIGNED_SIZE) -> np.ndarray:
    """Crop the quad out of an RGB uint8 image into an output_size square, exactly as the FFHQ recipe does."""
    import scipy.ndimage
    from PIL import Image

    quad = np.array(quad, dtype=np.float64)
    qsize = np.hypot(*(quad[3] - quad[0]))
    img = Image.fromarray(pixels)
    transform_size = output_size

    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, Image.Resampling.LANCZOS)
        quad /= shrink
        qsize /= shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, img.size[0]),
            min(hi[1] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]

    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - img.size[0] + border, 0),
           max(hi[1] - img.size[1] + border, 0))
    if max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        yy, xx, _ = np.ogrid[:h, :w, :1]
        edge = np.maximum(1.0 - np.minimum(np.float32(xx) / pad[0], np.float32(w - 1 - xx) / pad[2]),
                          1.0 - np.minimum(np.float32(yy) / pad[1], np.float32(h - 1 - yy) / pad[3]))
        sigma = qsize * 0.02
        arr += (scipy.ndimage.gaussian_filter(arr, [sigma, sigma, 0]) - arr) * np.clip(edge * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(edge, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]

    img = img.transform((transform_size, transform_size), Image.Transform.QUAD, (quad + 0.5).flatten(),
                        Image.Resampling.BILINEAR)
    return np.asarray(img.convert("RGB"))


class FaceAligner:
    """dlib's frontal face detector and 68-point shape predictor, loaded once."""

    def __init__(self, predictor_path: Path | None = None):
        try:
            import dlib
        except ImportError:
            raise StyleCliError(
                "face alignment needs dlib: pip install 'stylecli[faces]' (or pass --no-align for aligned crops)"
            ) from None
        if predictor_path is None:
            from stylecli import weights

            predictor_path = weights.resolve("dlib_landmarks68")
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path))
        self._lock = threading.Lock()  # dlib's objects are not documented as thread-safe

    def detect(self, pixels: np.ndarray, upsample: int | None = None) -> list[Face]:
        """Faces sorted largest first. upsample=None: at the image's own scale, then once upsampled if none
        was found (small faces), which avoids the false detections that upsampling adds to large photos.
        Detections scoring under MIN_FACE_SCORE are dropped when a better one exists."""
        tries = [0, 1] if upsample is None else [upsample]
        rgb = np.ascontiguousarray(pixels)
        with self._lock:
            return self._detect(rgb, tries)

    def _detect(self, rgb: np.ndarray, tries: list[int]) -> list[Face]:
        for up in tries:
            dets, scores, _ = self._detector.run(rgb, up, 0.0)
            if len(dets):
                break
        keep = [i for i, sc in enumerate(scores) if sc >= MIN_FACE_SCORE]
        if not keep and len(scores):
            keep = [int(np.argmax(scores))]
        faces = []
        for d, score in ((dets[i], scores[i]) for i in keep):
            shape = self._predictor(rgb, d)
            lm = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            faces.append(Face((d.left(), d.top(), d.right(), d.bottom()), float(score), lm, face_quad(lm)))
        return sorted(faces, key=lambda f: f.area, reverse=True)


def select_faces(faces: list[Face], which: str, source: Path | str) -> list[tuple[int, Face]]:
    """`largest` (default), `all`, or a face index (0 = largest); errors name the file and the fix."""
    if not faces:
        raise InputError(
            f"no face found in {source}; pass --no-align if the image is already an aligned crop, "
            "or --detector-upsample 2 for very small faces"
        )
    if which == "largest":
        return [(0, faces[0])]
    if which == "all":
        return list(enumerate(faces))
    index = int(which)
    if not 0 <= index < len(faces):
        raise InputError(f"{source}: --faces {index} asked for, but only {len(faces)} face(s) found (0 is largest)")
    return [(index, faces[index])]


def parse_faces_option(value: str) -> str:
    if value in ("largest", "all") or (value.isdigit()):
        return value
    raise ValueError("expected 'largest', 'all' or a face index such as 0")


# --- undoing the crop: paste an edited face back into the photo ------------------------------------------

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


# --- the sidecar that lets `edit --paste-back` work from a saved latent -----------------------------------

def write_sidecar(dest: Path, source: Path, image_size: tuple[int, int], index: int, face: Face,
                  overwrite: bool = False) -> Path:
    check_free(dest, overwrite)
    data = {"source": str(source), "image_size": list(image_size), "face_index": index, **face.to_dict()}
    with atomic_path(dest, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    return dest


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        data["quad"] = np.asarray(data["quad"], dtype=np.float64).reshape(4, 2)
        return data
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: unreadable alignment sidecar ({exc})") from None
