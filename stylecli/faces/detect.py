"""Finding faces: dlib's frontal detector and 68-point landmarks, and choosing which faces to edit."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.errors import InputError, missing_package
from stylecli.faces.align import face_quad

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


_LOADED: dict[tuple[str, int, int], tuple] = {}  # (path, size, mtime) -> dlib's models and the lock they share
_LOADING = threading.Lock()


def _dlib_models(dlib: Any, path: Path) -> tuple:
    """dlib's detector and the shape predictor of `path`, loaded once per process (half a second each time
    otherwise), with one lock for them: dlib's objects are not documented as thread-safe."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path)), threading.Lock())
        return _LOADED[key]


class FaceAligner:
    """dlib's frontal face detector and 68-point shape predictor, loaded once."""

    def __init__(self, predictor_path: Path | None = None):
        try:
            import dlib
        except ImportError:
            raise missing_package("face alignment needs dlib", "faces",
                                  " (or pass --no-align for aligned crops)") from None
        if predictor_path is None:
            from stylecli.registry import weights

            predictor_path = weights.resolve("dlib_landmarks68")
        self._detector, self._predictor, self._lock = _dlib_models(dlib, Path(predictor_path))

    def detect(self, pixels: np.ndarray, upsample: int | None = None,
               landmark_pixels: np.ndarray | None = None) -> list[Face]:
        """Faces sorted largest first. upsample=None: at the image's own scale, then once upsampled if none
        was found (small faces), which avoids the false detections that upsampling adds to large photos.
        Detections scoring under MIN_FACE_SCORE are dropped when a better one exists.

        landmark_pixels: the same photo as decoded by the official alignment (`landmark_pixels_for`); when
        given, faces and landmarks are found on it instead of on `pixels` (same size, same coordinates). The
        crop is still cut from `pixels`, as the official code cuts it from Pillow's decoding."""
        tries = [0, 1] if upsample is None else [upsample]
        if landmark_pixels is not None:
            if landmark_pixels.shape != pixels.shape:
                raise ValueError(f"landmark_pixels {landmark_pixels.shape} differ from the photo's {pixels.shape}")
            pixels = landmark_pixels
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


def landmark_pixels_for(path: Path | str, pixels: np.ndarray) -> np.ndarray | None:
    """The pixels the official e4e alignment finds landmarks on, when they differ from `pixels` (Pillow's).

    The official code (encoder4editing utils/alignment.py) runs dlib's detector and landmarks on
    `dlib.load_rgb_image(path)` and crops from Pillow's decoding of the same file. For JPEGs the two decoders
    differ (chroma upsampling, IDCT) by up to a dozen grey levels, enough to move landmarks by a pixel. So for a
    JPEG that needs no EXIF rotation, whose dlib decoding has the size of `pixels` (Pillow's, as read by
    read_image), this returns dlib's decoding; otherwise (PNG and other formats, rotated or unreadable
    JPEGs, identical decodings) None, meaning: find the landmarks on `pixels`. Pass the result to
    `FaceAligner.detect(pixels, upsample, landmark_pixels=...)`.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(3) != b"\xff\xd8\xff":  # not JPEG data, whatever the name says
                return None
        from stylecli.files.images import open_image

        with open_image(path) as img:
            if img.getexif().get(0x0112, 1) not in (None, 1):  # read_image rotated it; dlib would not
                return None
        import dlib

        decoded = dlib.load_rgb_image(str(path))
    except (ImportError, OSError, RuntimeError, SyntaxError, ValueError):
        return None
    if decoded.shape != pixels.shape or np.array_equal(decoded, pixels):
        return None
    return decoded


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
