"""Parity with the official e4e code at the full FFHQ configuration (../shared/reference/parity).

The reference checkpoint is rebuilt from its recipe with ../shared/reference/parity_checkpoint.py (1.2 GB,
in a temporary folder), loaded through stylecli's own loader and run through the inference path; the
outputs must match what the official code computed: latents within 1e-4, the 256-px pooled image within
1e-3, the PNG within 1 grey level. Skipped where ../shared is absent (see helpers.reference_dir).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import reference_dir
from PIL import Image

from stylecli.encoders.loader import load_model
from stylecli.pipeline.editor import FaceEditor, preprocess, to_uint8

pytestmark = pytest.mark.slow  # full-size official models on the CPU

FINGERPRINT = "ab77a03ca34aa801068e2b58f8aded7c3149266f9ecece47dfb7405fd5dcac5f"


@pytest.fixture(scope="module")
def parity() -> Path:
    return reference_dir("parity")


@pytest.fixture(scope="module")
def parity_checkpoint(parity, tmp_path_factory):
    path = tmp_path_factory.mktemp("parity") / "parity.pt"
    out = subprocess.run([sys.executable, str(reference_dir("parity_checkpoint.py")), str(path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == FINGERPRINT
    yield path
    path.unlink(missing_ok=True)


def test_matches_official_outputs(parity, parity_checkpoint, capsys):
    loaded = load_model(parity_checkpoint, use_cache=False)
    assert loaded.config.size == 1024 and loaded.config.kind == "e4e" and loaded.model.n_styles == 18
    editor = FaceEditor.from_loaded(loaded, "cpu")
    report = {}
    for name in ("astronaut", "chelsea"):
        pixels = np.asarray(Image.open(parity / "inputs" / f"{name}.png").convert("RGB"))
        with torch.inference_mode():
            codes = editor.encode(preprocess(pixels)[None]).codes
            raw = editor.render(codes)
        latent = np.load(parity / "official" / f"{name}_latent.npy")
        pooled = np.load(parity / "official" / f"{name}_pooled256.npy")
        png = np.asarray(Image.open(parity / "official" / f"{name}_image.png").convert("RGB")).astype(int)
        ours_png = to_uint8(raw)[0].astype(int)
        report[name] = {
            "latent_max_abs": float(np.abs(codes[0].numpy() - latent).max()),
            "pooled256_max_abs": float(np.abs(F.adaptive_avg_pool2d(raw, 256)[0].numpy() - pooled).max()),
            "png_max_grey_levels": int(np.abs(ours_png - png).max()),
            "png_pixels_off": int((ours_png != png).sum()),
        }
        # The public pipeline (uint8 in, uint8 out) gives the same result.
        face = editor(pixels, align=False)[0].faces[0]
        assert np.abs(face.code - latent).max() < 1e-4
        assert np.abs(face.reconstruction.astype(int) - png).max() <= 1
    with capsys.disabled():
        print("\nparity deviations vs official e4e:", json.dumps(report))
    for name, dev in report.items():
        assert dev["latent_max_abs"] < 1e-4, name
        assert dev["pooled256_max_abs"] < 1e-3, name
        assert dev["png_max_grey_levels"] <= 1, name
