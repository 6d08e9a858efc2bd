"""`invert --tune` / `edit --tune` / `edit latent.npy` with saved tuned weights, end to end on a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_model
from helpers import invoke, records
from PIL import Image

from stylecli.editing.sefa import sefa_directions
from stylecli.encoders.formats.e4e import default_opts, save_checkpoint
from stylecli.pipeline.editor import to_uint8
from stylecli.tuning import load_tuned, render

TUNE = ("--tune", "--tune-steps", "5", "--tune-lr", "1e-2", "--tune-lpips-stop", "0")
STEM = "face_tuned-s5-lr0.01-stop0"  # the tuning settings are in the output names


pytestmark = pytest.mark.usefixtures("offline_lpips")


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def rendered(generator, code, weights=None) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(render(generator, torch.as_tensor(code)[None], weights))[0].astype(int)


@pytest.mark.slow
def test_invert_tune_then_edit_the_latent_through_the_tuned_weights(tmp_path, tiny_checkpoint, face_png):
    out = tmp_path / "out"
    result = invoke("invert", face_png, *TUNE, "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    tuned_file = out / f"{STEM}.tuned.safetensors"
    assert rec["outputs"]["face0.tuned"] == str(tuned_file) and tuned_file.exists()
    assert f"tuning {STEM}: step 0/5, LPIPS" in result.stderr and f"{STEM}: tuned in 5 steps" in result.stderr

    generator = tiny_model().decoder
    code = np.load(out / f"{STEM}.npy")
    weights = load_tuned(tuned_file, generator)
    tuned, plain = rendered(generator, code, weights), rendered(generator, code)
    assert np.abs(png(out / f"{STEM}_inversion.png") - tuned).max() <= 1  # the reconstruction is the tuned one
    assert np.abs(tuned - plain).max() > 8
    untuned = invoke("invert", face_png, "--checkpoint", tiny_checkpoint, "-o", out, "--skip-existing", "--json")
    assert records(untuned)[0]["status"] == "done" and (out / "face.npy").exists()  # tuning is in the names

    # The latent alone: edits find and use the tuned weights (a note says so); --no-tune ignores them.
    args = ("edit", out / f"{STEM}.npy", "-d", "sefa:0", "-s", "2", "--checkpoint", tiny_checkpoint, "-o", out / "e")
    result = invoke(*args, "--paste-back", "--json")
    assert result.exit_code == 0, result.stderr
    assert f"rendering through {tuned_file}" in result.stderr
    assert any("rendering through" in note for note in records(result)[0]["notes"])
    direction = sefa_directions(generator, None)[0][0]  # what sefa:0 is (every layer)
    edited = (code + 2 * direction.reshape(1, -1)).astype(np.float32)
    assert np.abs(png(out / "e" / f"{STEM}_sefa-0+2.png") - rendered(generator, edited, weights)).max() <= 1
    assert (out / "e" / f"{STEM}_sefa-0+2_pasted.png").exists()
    # --save-latent: each edited latent gets the face's tuned weights beside it, tied to it, with the tuning record
    result = invoke("edit", out / f"{STEM}.npy", "-d", "sefa:0", "-s", "1", "--checkpoint", tiny_checkpoint,
                    "--save-latent", "-o", out / "s", "--json")
    assert result.exit_code == 0, result.stderr
    step = out / "s" / f"{STEM}_sefa-0+1"
    assert records(result)[0]["outputs"]["sefa-0+1.tuned"] == f"{step}.tuned.safetensors"
    again = invoke("edit", f"{step}.npy", "-d", "sefa:0", "-s", "1", "--checkpoint", tiny_checkpoint,
                   "-o", out / "s2")
    assert again.exit_code == 0 and "rendering through" in again.output, again.output
    twice = (code + 2 * direction.reshape(1, -1)).astype(np.float32)
    assert np.abs(png(out / "s2" / f"{STEM}_sefa-0+1_sefa-0+1.png") - rendered(generator, twice, weights)).max() <= 1
    from stylecli.tuning.store import read_metadata

    assert read_metadata(f"{step}.tuned.safetensors")["max_steps"] == "5"  # how it was tuned travels along
    result = invoke(*args, "--no-tune", "-o", out / "plain")  # its own names: not the tuned render's
    assert result.exit_code == 0, result.stderr
    assert np.abs(png(out / "plain" / f"{STEM}_untuned_sefa-0+2.png") - rendered(generator, edited)).max() <= 1

    # Another generator refuses the file, with the fix in the message.
    other = tmp_path / "other.pt"
    save_checkpoint(tiny_model(seed=1), other, default_opts(tiny_config()))
    result = invoke("edit", out / f"{STEM}.npy", "-d", "sefa:0", "--checkpoint", other, "-o", out / "x", "--json")
    assert result.exit_code == 1
    assert "tuned from another generator" in records(result)[0]["error"] and "--no-tune" in records(result)[0]["error"]

    # The latent replaced after tuning (e.g. `invert --overwrite` without --tune): the stale file is refused.
    np.save(out / f"{STEM}.npy", (code + 0.5).astype(np.float32))
    result = invoke(*args, "-o", out / "stale", "--json")
    assert result.exit_code == 1 and "tuned for another latent" in records(result)[0]["error"]


@pytest.mark.slow
def test_edit_tune_from_the_photo_with_paste_back(tmp_path, tiny_checkpoint, face_png):
    out = tmp_path / "out"
    result = invoke("edit", face_png, *TUNE, "--locality", "-d", "sefa:1", "-s", "3", "--save-latent",
                    "--paste-back", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    outputs = records(result)[0]["outputs"]
    assert set(outputs) >= {"face0.sefa-1+3", "sefa-1+3.pasted", "face0.aligned", "face0.alignment",
                            "face0.sefa-1+3.latent", "face0.sefa-1+3.tuned", "face0.sefa-1+3.alignment"}
    # the edited latent continues through the tuned weights written beside it
    latent = Path(outputs["face0.sefa-1+3.latent"])
    assert Path(outputs["face0.sefa-1+3.tuned"]) == latent.with_suffix(".tuned.safetensors")
    again = invoke("edit", latent, "-d", "sefa:1", "-s", "0", "--checkpoint", tiny_checkpoint, "-o", out / "again")
    assert again.exit_code == 0 and "rendering through" in again.output, again.output
    (same,) = (out / "again").glob("*.png")
    assert np.abs(png(same) - png(outputs["face0.sefa-1+3"])).max() <= 1
    # --overwrite of that latent's edit by the edit of an untuned latent of the same name: the stale tuned file of
    # the replaced output goes (--no-tune writes names of its own, and leaves it)
    args = ("-d", "sefa:1", "-s", "0", "--checkpoint", tiny_checkpoint, "--save-latent", "-o", out / "n")
    assert invoke("edit", latent, *args).exit_code == 0
    replaced = out / "n" / f"{latent.stem}_sefa-1+0.tuned.safetensors"
    assert replaced.is_file()
    assert invoke("edit", latent, *args, "--no-tune").exit_code == 0 and replaced.is_file()
    assert (out / "n" / f"{latent.stem}_untuned_sefa-1+0.npy").is_file()
    bare = tmp_path / "bare" / latent.name
    bare.parent.mkdir()
    bare.write_bytes(latent.read_bytes())
    result = invoke("edit", bare, *args, "--overwrite", "--json")
    assert result.exit_code == 0 and "sefa-1+0.tuned" not in records(result)[0]["outputs"], result.stderr
    assert not replaced.exists() and (out / "n" / f"{latent.stem}_sefa-1+0.npy").is_file()
    plain = invoke("edit", face_png, "-d", "sefa:1", "-s", "3", "--checkpoint", tiny_checkpoint,
                   "-o", tmp_path / "plain", "--json")
    assert plain.exit_code == 0, plain.stderr
    untuned = records(plain)[0]["outputs"]["face0.sefa-1+3"]
    assert np.abs(png(outputs["face0.sefa-1+3"]) - png(untuned)).max() > 8  # the edit rendered through the tuning
    assert png(outputs["sefa-1+3.pasted"]).shape == png(face_png).shape


def test_tuning_options_need_tune(tmp_path, face_png):
    for args in (("invert", face_png, "--tune-steps", "3"), ("invert", face_png, "--locality"),
                 ("edit", face_png, "-d", "sefa:0", "--pivot", "project"),
                 ("edit", face_png, "-d", "sefa:0", "--tune", "--no-tune"),
                 ("invert", face_png, "--tune", "--tune-lr", "0")):
        result = invoke(*args, "-o", tmp_path / "out")
        assert result.exit_code == 2, (args, result.stderr)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_face_editor_tunes_between_encoding_and_editing(tiny_checkpoint, face_png):
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.tuning import ProjectionConfig, TuningConfig
    from stylecli.tuning.stage import Tuner

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    tuner = Tuner(TuningConfig(steps=8, lr=1e-2, lpips_stop=0), pivot="project",
                  projection=ProjectionConfig(steps=10, w_avg_samples=32))
    plain = editor(face_png, ["sefa:0"], align=False)[0].faces[0]
    tuned = editor(face_png, ["sefa:0"], align=False, tuner=tuner)[0].faces[0]
    target = editor.target(face_png).astype(int)  # the 256 px photo resized to the generator's 32 px
    assert target.shape == (32, 32, 3)
    assert plain.weights is None and tuned.weights is not None
    assert np.allclose(tuned.code[0], tuned.code[-1])  # the pivot is PTI's W projection: one w for every layer
    error = [float(((f.reconstruction.astype(int) - target) ** 2).mean()) for f in (plain, tuned)]
    assert error[1] < error[0] / 2
    again = editor.synthesize(tuned.edits[0].code[None], [tuned.weights])[0]  # edits render through the weights
    assert np.abs(again.astype(int) - tuned.edits[0].image.astype(int)).max() <= 1
