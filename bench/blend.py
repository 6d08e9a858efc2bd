"""Paste-back blends compared: feathered mask versus OpenCV's Poisson cloning (`paste_back(blend=...)`).

    python bench/blend.py [--repeats 5]

On scikit-image's astronaut (real dlib alignment), the aligned face is edited synthetically the way a generator
changes it, then pasted back with each blend (and, as a reference for a visible seam, a hard paste: the same
region without feathering). Prints JSON with, per edit and blend:
- seam: gradient energy across the region's edge of the change the paste makes (output minus photo, smoothed
  with a 2 px Gaussian so that fine detail lost in resampling does not count): its RMS gradient, in levels per
  pixel, over a band made of the feather ring and 3 px each side of the region's outline. The photo's own
  detail cancels out; a step at the edge (a visible seam) counts fully;
- ring_error: mean absolute difference from the original photo (0-255 levels) in the feather ring, where the
  face meets the photo;
- edit_error: mean absolute difference from the edited face (warped into the photo) where the mask is 1, i.e.
  how much of the edit the blend undoes;
- time per paste in ms (median), at the photo's size and at 4x (2048 px).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def edits(crop: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    c = crop.astype(np.float64)
    drift = c * np.array([1.08, 0.97, 0.92]) + np.array([6.0, -4.0, -10.0])  # a generator's colour drift
    recon = gaussian_filter(c, [1.2, 1.2, 0]) * np.array([1.05, 0.98, 0.95]) + np.array([4.0, 0.0, -6.0])
    out = {"identity": c, "colour_drift": drift, "blurred_drift": recon}
    return {k: np.clip(np.rint(v), 0, 255).astype(np.uint8) for k, v in out.items()}


def hard_paste(photo, face, quad):
    """The reference seam: the edited face inside the same region, without feathering."""
    from stylecli.faces.paste import _bilinear, _place, face_mask

    out = photo.copy()
    (ys, xs), u, v = _place(photo.shape, quad, face.shape[0])
    inside = _bilinear(face_mask(face.shape[0])[..., None], u, v)[..., 0] > 0
    patch = out[ys, xs]
    patch[inside] = np.clip(np.rint(_bilinear(face.astype(np.float64), u, v)), 0, 255).astype(np.uint8)[inside]
    return out


def zones(photo, quad, size):
    """Full-photo maps: the sampled feather mask, and the warped edit is computed per edit."""
    from stylecli.faces.paste import _bilinear, _place, face_mask

    mask = np.zeros(photo.shape[:2])
    (ys, xs), u, v = _place(photo.shape, quad, size)
    mask[ys, xs] = _bilinear(face_mask(size)[..., None], u, v)[..., 0]
    return mask, (ys, xs, u, v)


def gradient_energy(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float64)
    gx = np.zeros_like(f)
    gy = np.zeros_like(f)
    gx[:, :-1] = f[:, 1:] - f[:, :-1]
    gy[:-1] = f[1:] - f[:-1]
    return (gx**2 + gy**2).sum(axis=-1)


def measure(photo, quad) -> dict:
    from scipy.ndimage import binary_dilation, binary_erosion, gaussian_filter

    from stylecli.faces import align_crop, paste_back
    from stylecli.faces.paste import _bilinear

    crop = align_crop(photo, quad)
    mask, (ys, xs, u, v) = zones(photo, quad, crop.shape[0])
    region = mask > 0
    ring = region & (mask < 1)
    outline = binary_dilation(region, iterations=3) & ~binary_erosion(region, iterations=3)
    band = ring | outline
    core = mask >= 1
    photo_rms = float(np.sqrt(gradient_energy(photo)[band].mean()))
    results = {}
    for name, face in edits(crop).items():
        warped = photo.astype(np.float64).copy()
        warped[ys, xs] = _bilinear(face.astype(np.float64), u, v)
        row = {}
        for blend in ("feather", "seamless", "hard"):
            out = hard_paste(photo, face, quad) if blend == "hard" else paste_back(photo, face, quad, blend=blend)
            diff = np.abs(out.astype(np.float64) - photo)
            change = gaussian_filter(out.astype(np.float64) - photo, [2, 2, 0])
            row[blend] = {
                "seam": round(float(np.sqrt(gradient_energy(change)[band].mean())), 3),
                "ring_error": round(float(diff[ring].mean()), 3),
                "edit_error": round(float(np.abs(out - warped)[core].mean()), 3),
            }
        results[name] = row
    return {"photo_gradient_rms_in_band": round(photo_rms, 3), **results}


def paste_time_ms(photo, quad, face, blend: str, repeats: int) -> float:
    from stylecli.faces import paste_back

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        paste_back(photo, face, quad, blend=blend)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1e3, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import cv2
    from skimage import data

    from stylecli.faces import FaceAligner, align_crop

    photo = data.astronaut()
    quad = FaceAligner().detect(photo)[0].quad
    report = {"photo": f"skimage astronaut {photo.shape[1]}x{photo.shape[0]}", "opencv": cv2.__version__,
              "edits": measure(photo, quad), "time_ms": {}}
    big = np.repeat(np.repeat(photo, 4, axis=0), 4, axis=1)
    for label, img, q in (("512px", photo, quad), ("2048px", big, quad * 4)):
        face = edits(align_crop(img, q))["colour_drift"]
        report["time_ms"][label] = {b: paste_time_ms(img, q, face, b, args.repeats) for b in ("feather", "seamless")}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
