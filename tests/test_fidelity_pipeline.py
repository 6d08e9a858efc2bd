"""ReStyle and HyperStyle in the FaceEditor and the CLI: tiny official-format checkpoints, real pipeline."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from helpers import build_hub_cache, invoke, records, write_registry
from PIL import Image
from tiny_fidelity import save_tiny_hyperstyle, save_tiny_restyle, tiny_hyperstyle

from stylecli.encoders.hyperstyle import HyperStyleEncoder, HyperStyleWeights, load_state
from stylecli.encoders.restyle import ReStyleEncoder
from stylecli.errors import InputError
from stylecli.pipeline.editor import FaceEditor, preprocess, to_uint8


@pytest.fixture
def restyle_file(tmp_path):
    path = tmp_path / "tiny_restyle.pt"
    return path, save_tiny_restyle(path)


@pytest.fixture
def hyperstyle_files(tmp_path):
    return save_tiny_hyperstyle(tmp_path)


def crop(face_png) -> np.ndarray:
    return np.asarray(Image.open(face_png).convert("RGB"))


def test_restyle_in_the_face_editor(restyle_file, face_png):
    path, model = restyle_file
    editor = FaceEditor.from_checkpoint(path, "cpu", steps=3)
    # opts say ffhq_encode (the training default), but an 8-style generator is not FFHQ's: domain unknown
    assert isinstance(editor.encoder, ReStyleEncoder) and editor.encoder.steps == 3 and editor.domain is None
    pixels = crop(face_png)
    result = editor(pixels, ["sefa:0"], align=False)[0]
    x = preprocess(pixels)[None]
    with torch.no_grad():
        passes = list(model.iterate(x, 3))
        image = to_uint8(model.synthesize(passes[-1].codes))[0]
    face = result.faces[0]
    assert np.abs(face.code - passes[-1].codes[0].numpy()).max() < 1e-5
    assert np.abs(face.reconstruction.astype(int) - image).max() <= 1
    encoded = editor.encode([pixels])
    assert len(encoded.steps) == 3 and torch.allclose(encoded.steps[0], passes[0].codes, atol=1e-5)
    assert face.edits[0].image.shape == image.shape and face.weights is None


def test_hyperstyle_in_the_face_editor(hyperstyle_files, face_png):
    model, path, w_path = hyperstyle_files
    editor = FaceEditor.from_checkpoint(path, "cpu", w_encoder=w_path, steps=2)
    assert isinstance(editor.encoder, HyperStyleEncoder) and editor.domain is None
    pixels = crop(face_png)
    face = editor(pixels, ["sefa:1"], align=False)[0].faces[0]
    x = preprocess(pixels)[None]
    with torch.no_grad():
        codes = model.w_codes(x)
        last = list(model.iterate(x, codes, 2))[-1]
        image = to_uint8(model.synthesize(codes, last.offsets))[0]
        plain = to_uint8(model.synthesize(codes))[0]
    assert np.abs(face.code - codes[0].numpy()).max() < 1e-5
    assert np.abs(face.reconstruction.astype(int) - image).max() <= 1
    assert np.abs(plain.astype(int) - image).max() > 5  # the offsets matter
    assert isinstance(face.weights, HyperStyleWeights) and face.weights.state.n_terms == 2
    # the edit renders with the photo's weights: same as rendering the edited code with them directly
    edited = torch.from_numpy(face.edits[0].code)[None]
    with torch.no_grad():
        expected = to_uint8(model.synthesize(edited, last.offsets))[0]
    assert np.abs(face.edits[0].image.astype(int) - expected).max() <= 1


def test_from_pretrained_restyle_and_hyperstyle_with_its_w_encoder(tmp_path, monkeypatch, isolated_cache,
                                                                   restyle_file, hyperstyle_files):
    (restyle, _), (_, hyper, w_enc) = restyle_file, hyperstyle_files
    body = ""
    for name, path in (("restyle_e4e_ffhq", restyle), ("hyperstyle_ffhq", hyper), ("faces_w_encoder", w_enc)):
        content = path.read_bytes()
        build_hub_cache(isolated_cache / "hf", f"org/{name}", path.name, content)
        kind = "w_encoder" if name == "faces_w_encoder" else "checkpoint"
        body += (f'[{name}]\nwhat = "t"\nkind = "{kind}"\nfile = "{path.name}"\nlicense = "t"\n'
                 f'sha256 = "{hashlib.sha256(content).hexdigest()}"\n'
                 f'sources = [{{ hf = "org/{name}", path = "{path.name}" }}]\n')
    write_registry(tmp_path, monkeypatch, body)
    assert isinstance(FaceEditor.from_pretrained("restyle_e4e_ffhq", "cpu").encoder, ReStyleEncoder)
    editor = FaceEditor.from_pretrained("hyperstyle_ffhq", "cpu")  # the registry's faces_w_encoder
    assert isinstance(editor.encoder, HyperStyleEncoder) and editor.encoder.steps == 5
    assert editor.encoder.model.w_encoder is not None


def test_cli_invert_restyle_steps_and_save_steps(tmp_path, restyle_file, face_png):
    path, model = restyle_file
    out = tmp_path / "out"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", path, "--steps", 3, "--save-steps", "-o", out)
    assert result.exit_code == 0, result.output
    x = preprocess(crop(face_png))[None]
    with torch.no_grad():
        passes = list(model.iterate(x, 3))
        images = [to_uint8(model.synthesize(p.codes))[0] for p in passes]
    assert np.abs(np.load(out / "face_steps3.npy") - passes[-1].codes[0].numpy()).max() < 1e-5
    for t in (1, 2):
        saved = np.asarray(Image.open(out / f"face_steps3_step{t}.png")).astype(int)
        assert np.abs(saved - images[t - 1]).max() <= 1
    assert not (out / "face_steps3_step3.png").exists()  # the last pass is the reconstruction
    assert np.abs(np.asarray(Image.open(out / "face_steps3_inversion.png")).astype(int) - images[-1]).max() <= 1
    default = invoke("invert", face_png, "--no-align", "--checkpoint", path, "-o", out, "--json")  # 5 passes
    assert set(records(default)[0]["outputs"].values()) == {str(out / "face.npy"), str(out / "face_inversion.png")}


def test_cli_usage_errors(tmp_path, tiny_checkpoint, restyle_file, face_png):
    result = invoke("invert", face_png, "--no-align", "--checkpoint", restyle_file[0], "--save-steps",
                    "--latent-only", "-o", tmp_path)
    assert result.exit_code == 2 and "--latent-only" in result.output
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--steps", 2, "-o", tmp_path)
    assert result.exit_code == 2 and "one pass" in result.output and "Traceback" not in result.output
    result = invoke("invert", face_png, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--save-steps", "-o",
                    tmp_path / "o", "--json")
    assert result.exit_code == 2 and result.stderr.count("one pass") == 1 and result.stdout == ""


@pytest.mark.slow
def test_cli_hyperstyle_invert_then_edit_the_saved_latent(tmp_path, hyperstyle_files, face_png):
    model, path, w_path = hyperstyle_files
    out = tmp_path / "out"
    common = ("--checkpoint", path, "--w-encoder", w_path, "--steps", 2)
    result = invoke("invert", face_png, "--no-align", *common, "-o", out)
    assert result.exit_code == 0, result.output
    offsets = out / "face_steps2.hyperstyle.npz"
    assert offsets.is_file() and offsets.stat().st_size < 20_000
    state = load_state(offsets, model)
    x = preprocess(crop(face_png))[None]
    with torch.no_grad():
        last = list(model.iterate(x, model.w_codes(x), 2))[-1]
        for ours, again in zip(last.offsets, model.offsets_of(state)):
            assert (ours is None) == (again is None)
            if ours is not None:
                assert (ours - again).abs().max() < 1e-5
    # editing the saved latent gives the image editing the photo gives
    from_photo = invoke("edit", face_png, "--no-align", *common, "-d", "sefa:1", "-s", 2, "-o", tmp_path / "a")
    from_latent = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-s", 2, "-o", tmp_path / "b")
    assert from_photo.exit_code == 0 and from_latent.exit_code == 0, from_latent.output
    (a_png,), (b_png,) = (tmp_path / "a").glob("face_*.png"), (tmp_path / "b").glob("face_*.png")
    assert a_png.name == b_png.name == "face_steps2_sefa-1+2.png"  # the latent's name says --steps 2 once
    a, b = (np.asarray(Image.open(p)).astype(int) for p in (a_png, b_png))
    assert np.abs(a - b).max() <= 1
    # --save-latent: each edited latent gets the photo's offsets beside it, and continues from there
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-s", 1, "--save-latent",
                    "-o", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "face_steps2_sefa-1+1.hyperstyle.npz").is_file()
    result = invoke("edit", tmp_path / "s" / "face_steps2_sefa-1+1.npy", *common, "-d", "sefa:1", "-s", 1,
                    "-o", tmp_path / "s2")
    assert result.exit_code == 0, result.output
    (c_png,) = (tmp_path / "s2").glob("face_*.png")
    assert np.abs(np.asarray(Image.open(c_png)).astype(int) - a).max() <= 1  # +1 twice is +2
    # --skip-existing redoes an input whose offsets file is missing (it is one of the declared outputs)
    edited_offsets = tmp_path / "s" / "face_steps2_sefa-1+1.hyperstyle.npz"
    edited_offsets.unlink()
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-s", 1, "--save-latent",
                    "--skip-existing", "--json", "-o", tmp_path / "s")
    (rec,) = records(result)
    assert rec["status"] == "done" and rec["outputs"]["sefa-1+1.offsets"] == str(edited_offsets), result.output
    assert edited_offsets.is_file()
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-s", 1, "--save-latent",
                    "--skip-existing", "--json", "-o", tmp_path / "s")
    assert records(result)[0]["status"] == "skipped"  # complete now
    # a latent replaced after `invert` wrote its offsets: refused, naming the file
    code = np.load(out / "face_steps2.npy")
    np.save(out / "face_steps2.npy", code + 0.5)
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-o", tmp_path / "x")
    assert result.exit_code == 1 and "offsets written for another latent" in result.output
    assert str(offsets) in result.output and "Traceback" not in result.output
    np.save(out / "face_steps2.npy", code)
    # a truncated offsets file is one line naming it, not a traceback
    good = offsets.read_bytes()
    offsets.write_bytes(good[:200])
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-o", tmp_path / "t")
    assert result.exit_code == 1 and "unreadable HyperStyle offsets" in result.output
    assert "Traceback" not in result.output
    offsets.write_bytes(good)
    offsets.unlink()
    result = invoke("edit", out / "face_steps2.npy", *common, "-d", "sefa:1", "-o", tmp_path / "c")
    assert result.exit_code == 1 and "face_steps2.hyperstyle.npz" in result.output and "missing" in result.output


@pytest.mark.slow
def test_hyperstyle_offsets_are_tied_to_the_model_that_wrote_them(tmp_path, hyperstyle_files, face_png):
    model, path, w_path = hyperstyle_files
    out = tmp_path / "out"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", path, "--w-encoder", w_path, "--steps", 2,
                    "--latent-only", "-o", out)
    assert result.exit_code == 0, result.output
    latent, offsets = out / "face_steps2.npy", out / "face_steps2.hyperstyle.npz"
    (tmp_path / "other").mkdir()
    _, other, other_w = save_tiny_hyperstyle(tmp_path / "other", seed=1)  # same architecture, other weights

    def edit(checkpoint, w_encoder, dest):
        return invoke("edit", latent, "--checkpoint", checkpoint, "--w-encoder", w_encoder, "-d", "sefa:1",
                      "-o", tmp_path / dest)

    result = edit(other, w_path, "a")  # another HyperStyle model: refused in one line naming the file and the fix
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(offsets) in result.output and "another HyperStyle model" in result.output
    assert "invert it again" in result.output and not list((tmp_path / "a").glob("*.png"))
    # the W encoder takes no part in rendering a saved latent: another one is fine
    assert edit(path, other_w, "b").exit_code == 0 and list((tmp_path / "b").glob("face_*.png"))
    # another generator under the same hypernetwork is refused too
    other_model = tiny_hyperstyle(seed=1)
    model.decoder = other_model.decoder
    with pytest.raises(InputError, match="another HyperStyle model or generator"):
        load_state(offsets, model)
    # files from before the fingerprint (1) or the latent's sha256 (2): refused, saying so
    with np.load(offsets) as data:
        current = {k: data[k] for k in data.files}
    for version, dropped in ((1, ("model_fingerprint", "latent_sha256")), (2, ("latent_sha256",))):
        old = {k: v for k, v in current.items() if k not in dropped}
        old["format"] = np.array(f"stylecli-hyperstyle-offsets-{version}")
        with open(offsets, "wb") as f:
            np.savez(f, **old)
        result = edit(path, w_path, f"c{version}")
        assert result.exit_code == 1 and "earlier stylecli" in result.output, result.output
        assert "invert the photo again" in result.output
    # the current format without the latent's sha256 is a damaged file
    with open(offsets, "wb") as f:
        np.savez(f, **{k: v for k, v in current.items() if k != "latent_sha256"})
    result = edit(path, w_path, "d")
    assert result.exit_code == 1 and "unreadable HyperStyle offsets" in result.output


@pytest.mark.slow
def test_evaluate_compares_e4e_restyle_and_hyperstyle_in_one_table(tmp_path, monkeypatch, isolated_cache,
                                                                   tiny_checkpoint, restyle_file, hyperstyle_files,
                                                                   face_png):
    import json

    (_, hyper, w_enc) = hyperstyle_files
    body = ""
    for name, path in (("hyperstyle_ffhq", hyper), ("faces_w_encoder", w_enc)):
        content = path.read_bytes()
        build_hub_cache(isolated_cache / "hf", f"org/{name}", path.name, content)
        body += (f'[{name}]\nwhat = "t"\nkind = "checkpoint"\nfile = "{path.name}"\nlicense = "t"\n'
                 f'sha256 = "{hashlib.sha256(content).hexdigest()}"\n'
                 f'sources = [{{ hf = "org/{name}", path = "{path.name}" }}]\n')
    write_registry(tmp_path, monkeypatch, body)
    result = invoke("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--checkpoint", restyle_file[0],
                    "--model", "hyperstyle_ffhq", "--metrics", "l2,lec,speed", "--lec-edit", "sefa:0:2", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {r["checkpoint"]: r for r in doc["results"]}
    assert list(rows) == [str(tiny_checkpoint), str(restyle_file[0]), "hyperstyle_ffhq"]
    for row in rows.values():
        assert set(row["metrics"]) == {"l2", "lec"} and row["speed"]["encode_s_per_image"] > 0
    # HyperStyle's reconstruction uses its offsets: its L2 is what the model gives with them
    model = hyperstyle_files[0]
    x = preprocess(crop(face_png))[None]
    with torch.no_grad():
        codes = model.w_codes(x)
        offsets = list(model.iterate(x, codes, 5))[-1].offsets
        recon = torch.nn.functional.adaptive_avg_pool2d(model.synthesize(codes, offsets), 256)
    expected = float(((x - recon) ** 2).mean())
    assert abs(rows["hyperstyle_ffhq"]["metrics"]["l2"]["mean"] - expected) < 1e-4 * max(1.0, expected)


def test_evaluate_steps_and_w_encoder(tmp_path, monkeypatch, tiny_checkpoint, restyle_file, hyperstyle_files,
                                      face_png):
    import json

    from stylecli.evaluation import driver as evaluation

    (restyle, model), (_, hyper, w_enc) = restyle_file, hyperstyle_files
    real_load_faces = evaluation.load_faces
    monkeypatch.setattr(evaluation, "load_faces", lambda *a: pytest.fail("work started before the usage error"))
    base = ("evaluate", face_png, "--metrics", "l2", "--json")
    # options no evaluated model takes: exit 2, one line, before any image is read
    result = invoke(*base, "--checkpoint", tiny_checkpoint, "--steps", 2)
    assert result.exit_code == 2 and "one pass" in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    result = invoke(*base, "--checkpoint", tiny_checkpoint, "--checkpoint", restyle, "--w-encoder", w_enc)
    assert result.exit_code == 2 and "HyperStyle" in result.stderr and result.stdout == ""
    result = invoke(*base, "--checkpoint", hyper, "--w-encoder", tmp_path / "nope.pt")
    assert result.exit_code == 2 and "nope.pt: no such file" in result.stderr
    monkeypatch.setattr(evaluation, "load_faces", real_load_faces)
    # --steps reaches the iterative models (the e4e one ignores it), --w-encoder only the HyperStyle one
    result = invoke(*base, "--checkpoint", tiny_checkpoint, "--checkpoint", restyle, "--checkpoint", hyper,
                    "--w-encoder", w_enc, "--steps", 2)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [r["steps"] for r in rows] == [None, 2, 2]
    x = preprocess(crop(face_png))[None]
    with torch.no_grad():
        codes = list(model.iterate(x, 2, render_last=False))[-1].codes
        recon = torch.nn.functional.adaptive_avg_pool2d(model.synthesize(codes), 256).clamp(-1, 1)
    expected = float(((x - recon) ** 2).mean())
    assert abs(rows[1]["metrics"]["l2"]["mean"] - expected) < 1e-4 * max(1.0, expected)
