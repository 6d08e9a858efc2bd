"""Parity with the official ReStyle-e4e and HyperStyle code (../shared/reference/fidelity).

The checkpoints are rebuilt with the reference's recipe.py (kind and seed from each folder's fixture.json) in a
temporary folder, loaded through stylecli's loaders and run through its inference; the outputs must match what
the official code computed: codes within 1e-4, pooled images within 1e-3, offset norms within 1e-4 relative,
PNGs within 1 grey level. The folders come from STYLECLI_RESTYLE_REFERENCE / STYLECLI_HYPERSTYLE_REFERENCE when
set. By default one image and the first passes are compared; STYLECLI_FULL_REFERENCE=1 compares every image and
pass and the final PNGs (minutes at 1024 px on a CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import reference_dir
from PIL import Image

from stylecli.models.hyperstyle import generator_layers
from stylecli.models.restyle import pool
from stylecli.pipeline.editor import preprocess, to_uint8

pytestmark = pytest.mark.slow  # full-size official models on the CPU

FULL = os.environ.get("STYLECLI_FULL_REFERENCE") == "1"


def build_checkpoint(ref: Path, folder: Path) -> Path:
    """Run the reference's recipe for the kind and seed its fixture.json names."""
    fixture = json.loads((ref / "fixture.json").read_text())
    recipe = ref.parent / "recipe.py"
    if not recipe.is_file():
        recipe = reference_dir("fidelity/recipe.py")
    out = folder / f"{fixture['kind']}.pt"
    subprocess.run([sys.executable, str(recipe), fixture["kind"], str(out), "--seed", str(fixture.get("seed", 0))],
                   check=True, capture_output=True, text=True)
    return out


def inputs(ref: Path) -> list[tuple[str, torch.Tensor]]:
    files = sorted((ref / "inputs").glob("*.png"))[: None if FULL else 1]
    return [(f.name, preprocess(np.asarray(Image.open(f).convert("RGB")))[None]) for f in files]


def png_deviation(raw: torch.Tensor, png: Path) -> int:
    ours = to_uint8(raw)[0].astype(int)
    return int(np.abs(ours - np.asarray(Image.open(png).convert("RGB")).astype(int)).max())


def report(capsys, name: str, values: dict) -> None:
    with capsys.disabled():
        print(f"\n{name} max deviations vs the official code:", json.dumps(values))


def test_restyle_matches_the_official_code(tmp_path, capsys):
    from stylecli.encoders.formats.restyle import load_restyle

    ref = reference_dir("fidelity/restyle", "STYLECLI_RESTYLE_REFERENCE")

    model = load_restyle(build_checkpoint(ref, tmp_path)).model
    ref_codes = np.load(ref / "ref_latents.npy")
    ref_images = np.load(ref / "ref_images_pooled256.npy", mmap_mode="r")
    n_iters = ref_codes.shape[1] if FULL else 2
    dev = {"avg_image": 0.0, "codes": 0.0, "pooled": 0.0, "png_grey_levels": 0}
    with torch.inference_mode():
        avg = model.average_image().numpy()
        dev["avg_image"] = float(np.abs(avg - np.load(ref / "avg_image.npy")).max())
        for i, (name, x) in enumerate(inputs(ref)):
            steps = list(model.iterate(x, n_iters, render_last=not FULL))
            for t, step in enumerate(steps[: n_iters - 1] if FULL else steps):
                dev["codes"] = max(dev["codes"], float(np.abs(step.codes[0].numpy() - ref_codes[i, t]).max()))
                dev["pooled"] = max(dev["pooled"], float(np.abs(step.pooled[0].numpy() - ref_images[i, t]).max()))
            if FULL:  # the last pass: code, full-size image, pooled image and PNG
                last = steps[-1].codes
                dev["codes"] = max(dev["codes"], float(np.abs(last[0].numpy() - ref_codes[i, -1]).max()))
                raw = model.synthesize(last)
                dev["pooled"] = max(dev["pooled"], float(np.abs(pool(raw)[0].numpy() - ref_images[i, -1]).max()))
                dev["png_grey_levels"] = max(dev["png_grey_levels"], png_deviation(raw, ref / "ref_png" / name))
    report(capsys, "ReStyle", dev)
    assert dev["avg_image"] < 1e-3
    assert dev["codes"] < 1e-4
    assert dev["pooled"] < 1e-3
    assert dev["png_grey_levels"] <= 1


def test_hyperstyle_matches_the_official_code(tmp_path, capsys):
    from stylecli.encoders.formats.hyperstyle import load_hyperstyle

    ref = reference_dir("fidelity/hyperstyle", "STYLECLI_HYPERSTYLE_REFERENCE")

    path = build_checkpoint(ref, tmp_path)
    model = load_hyperstyle(path, path.with_name(path.stem + "_w_encoder.pt")).model
    shapes = [s for _, s in generator_layers(model.decoder)]
    ref_codes = np.load(ref / "ref_latents.npy")
    ref_w = np.load(ref / "ref_w_inversion_pooled256.npy", mmap_mode="r")
    ref_images = np.load(ref / "ref_images_pooled256.npy", mmap_mode="r")
    ref_l2 = np.load(ref / "ref_delta_l2.npy")
    ref_probe = np.load(ref / "ref_delta_probe.npy")
    n_iters = ref_images.shape[1] if FULL else 1
    dev = {"codes": 0.0, "w_pooled": 0.0, "pooled": 0.0, "offset_l2_rel": 0.0, "offset_probe": 0.0,
           "png_grey_levels": 0}
    with torch.inference_mode():
        for i, (name, x) in enumerate(inputs(ref)):
            codes = model.w_codes(x)
            dev["codes"] = max(dev["codes"], float(np.abs(codes[0].numpy() - ref_codes[i]).max()))
            partner = pool(model.synthesize(codes))
            dev["w_pooled"] = max(dev["w_pooled"], float(np.abs(partner[0].numpy() - ref_w[i]).max()))
            for t, step in enumerate(model.iterate(x, codes, n_iters, partner=partner)):
                dev["pooled"] = max(dev["pooled"], float(np.abs(step.pooled[0].numpy() - ref_images[i, t]).max()))
                for j, d in enumerate(step.offsets):
                    assert (d is None) == bool(np.isnan(ref_l2[i, t, j])), j
                    if d is None:
                        continue
                    k, cin, cout = shapes[j]
                    full = d[0].expand(cout, cin, k, k).double()  # the reference norms are float64
                    rel = abs(float(full.norm()) - ref_l2[i, t, j]) / ref_l2[i, t, j]
                    dev["offset_l2_rel"] = max(dev["offset_l2_rel"], rel)
                    probe = full[:8, :8, k // 2, k // 2].float().numpy()
                    dev["offset_probe"] = max(dev["offset_probe"], float(np.abs(probe - ref_probe[i, t, j]).max()))
            if FULL:
                raw = model.synthesize(codes, step.offsets)
                dev["png_grey_levels"] = max(dev["png_grey_levels"],
                                             png_deviation(raw, ref / "ref_png" / name))
    report(capsys, "HyperStyle", dev)
    assert dev["codes"] < 1e-4
    assert dev["w_pooled"] < 1e-3 and dev["pooled"] < 1e-3
    assert dev["offset_l2_rel"] < 1e-4
    assert dev["offset_probe"] < 1e-4
    assert dev["png_grey_levels"] <= 1
