"""Batches through the jobs: encoder batching, latent checks, sidecars from any folder, exact resume names,
and inputs checked before any model is resolved."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import invoke, records
from PIL import Image
from skimage import data


@pytest.mark.slow
def test_edit_batches_the_encoder_across_inputs(tmp_path, tiny_checkpoint, face_png, monkeypatch):
    from conftest import shifted_faces

    from stylecli.encoders.e4e import E4EEncoder

    folder = shifted_faces(tmp_path / "in", face_png, 4, 9, "f")
    calls = []
    original = E4EEncoder.encode
    monkeypatch.setattr(E4EEncoder, "encode", lambda self, x: calls.append(len(x)) or original(self, x))
    result = invoke("edit", folder, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "-d",
                    "sefa:0", "--batch-size", "4", "--json")
    assert result.exit_code == 0, result.stderr
    assert calls == [4] and len(records(result)) == 4


def test_a_latent_of_another_width_fails_alone_with_both_shapes(tmp_path, tiny_checkpoint, face_png):
    np.save(tmp_path / "wide.npy", np.zeros((8, 16), np.float32))
    np.save(tmp_path / "good.npy", np.zeros((8, 32), np.float32))
    np.save(tmp_path / "dir.npy", np.ones((1, 32), np.float32))
    result = invoke("edit", tmp_path / "wide.npy", tmp_path / "good.npy", face_png, "--no-align", "--checkpoint",
                    tiny_checkpoint, "-o", tmp_path / "o", "-d", tmp_path / "dir.npy", "--batch-size", "8", "--json")
    recs = records(result)
    assert result.exit_code == 1 and [r["status"] for r in recs] == ["failed", "done", "done"]
    assert recs[0]["error"] == f"{tmp_path / 'wide.npy'}: latent is [8, 16]; this model takes [8, 32]"


@pytest.mark.slow
def test_paste_back_from_a_latent_works_from_another_folder(tmp_path, tiny_checkpoint, monkeypatch):
    pytest.importorskip("dlib")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(data.astronaut()).save(tmp_path / "a" / "photo.png")
    monkeypatch.chdir(tmp_path / "a")
    assert invoke("invert", "photo.png", "--checkpoint", tiny_checkpoint, "-o", "out").exit_code == 0
    monkeypatch.chdir(tmp_path / "b")
    result = invoke("edit", "../a/out/photo.npy", "--checkpoint", tiny_checkpoint, "-o", "e", "-d", "sefa:1",
                    "--paste-back", "--json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "b" / "e" / "photo_sefa-1+3_pasted.png").is_file()
    # Moved together (photo and outputs), the pair still resolves: the path is relative to the sidecar.
    shutil.move(tmp_path / "a", tmp_path / "moved")
    result = invoke("edit", "../moved/out/photo.npy", "--checkpoint", tiny_checkpoint, "-o", "e2", "-d", "sefa:1",
                    "--paste-back")
    assert result.exit_code == 0, result.stderr


def test_resume_of_every_face_uses_exact_names(tmp_path):
    pytest.importorskip("dlib")
    for name in ("photo.png", "a[1].png"):
        Image.fromarray(data.astronaut()).save(tmp_path / name)
    out = tmp_path / "o"
    for name in ("photo.png", "a[1].png"):
        assert invoke("align", tmp_path / name, "--faces", "all", "-o", out).exit_code == 0
    # Another input's files that a pattern `photo_face*` would match:
    shutil.copy(out / "photo_face0.align.json", out / "photo_face_old.align.json")
    for name in ("photo.png", "a[1].png"):
        result = invoke("align", tmp_path / name, "--faces", "all", "-o", out, "--skip-existing", "--json")
        assert result.exit_code == 0 and records(result)[0]["status"] == "skipped", result.stdout + result.stderr


def test_missing_inputs_fail_before_any_model_is_resolved(tmp_path, monkeypatch):
    from stylecli.registry import weights

    def no_download(*args, **kwargs):
        raise AssertionError("a model was resolved for inputs that do not exist")

    monkeypatch.setattr(weights, "resolve", no_download)
    result = invoke("invert", tmp_path / "missing.png", "-o", tmp_path / "o", "--json")
    assert result.exit_code == 1
    assert records(result)[0]["error"] == f"{tmp_path / 'missing.png'}: no such file"
    assert f"{tmp_path / 'missing.png'}: no such file" in result.stderr


def test_a_sidecar_across_windows_drives_keeps_the_absolute_path(tmp_path, monkeypatch):
    """os.path.relpath raises ValueError for paths on two Windows drives (C: and D:)."""
    import json
    import os

    from stylecli.faces import Face, read_sidecar, sidecar_photo, write_sidecar

    photo = tmp_path / "photos" / "p.png"
    photo.parent.mkdir()
    photo.write_bytes(b"x")

    def across_drives(path, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(os.path, "relpath", across_drives)
    face = Face((1, 2, 3, 4), 1.0, np.zeros((68, 2)), np.zeros((4, 2)))
    side = write_sidecar(tmp_path / "out" / "p.align.json", photo, (10, 10), 0, face)
    data = json.loads(side.read_text())
    assert data["source"] == data["source_absolute"] == str(photo.resolve())
    assert sidecar_photo(side, read_sidecar(side)) == photo.resolve()


def test_expected_outputs_name_what_prepare_declares(tmp_path, tiny_checkpoint):
    """--skip-existing decides from expected_outputs, before any work; it must name exactly the files prepare then
    declares: every face (--faces all, an index), an aligned crop, a saved latent, a tuned latent, --save-latent."""
    from stylecli.batch.jobs import EditJob, EditPlan, FaceOptions, InvertJob
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.pipeline.sources import open_source

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    photo, crop = tmp_path / "photo.png", tmp_path / "crop.png"
    Image.fromarray(data.astronaut()).save(photo)
    Image.fromarray(data.astronaut()[20:180, 140:300]).save(crop)
    out = tmp_path / "out"
    out.mkdir()

    def same(job, source, stem):
        declared = job.prepare(source, stem, out).outputs
        assert job.expected_outputs(source, stem, out) == declared  # the same record keys too
        return list(declared.values())

    plan = EditPlan([(editor.resolve_edit("sefa:0"), 2.0)], paste_back=True, save_latent=True)
    faces_all = EditJob(editor, FaceOptions(True, "all"), plan)
    declared = faces_all.prepare(photo, "photo", out).outputs
    # --faces all counts the faces from the first face's sidecar, which a finished run wrote
    (out / "photo_face0.align.json").write_text(json.dumps({"faces_found": len(open_source(
        editor, photo, faces="all").faces)}))
    assert faces_all.expected_outputs(photo, "photo", out) == declared
    same(EditJob(editor, FaceOptions(True, "0"), plan), photo, "photo")
    same(InvertJob(editor, FaceOptions(False)), crop, "crop")
    latent = tmp_path / "crop.npy"
    np.save(latent, np.zeros((8, 32), np.float32))
    names = same(EditJob(editor, FaceOptions(False), EditPlan([(editor.resolve_edit("sefa:0"), 1.0)],
                                                              save_latent=True)), latent, "crop")
    assert [p.name for p in names] == ["crop_sefa-0+1.png", "crop_sefa-0+1.npy"]
    # a latent with tuned weights beside it: its edited latents carry their own
    from stylecli.photo_weights import write_photo_weights

    name, base = next(iter(editor.generator.state_dict().items()))
    write_photo_weights(editor, latent, np.load(latent), {name: base + 0.25}, {"lr": "0.01"},
                        editor.generator_fingerprint)
    names = same(EditJob(editor, FaceOptions(False), EditPlan([(editor.resolve_edit("sefa:0"), 1.0)],
                                                              save_latent=True)), latent, "crop")
    assert [p.name for p in names] == ["crop_sefa-0+1.png", "crop_sefa-0+1.npy", "crop_sefa-0+1.tuned.safetensors"]
