"""`stylecli edit` / `mix` / `directions` end to end on tiny official-format models."""

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import tiny_model
from helpers import invoke, records
from PIL import Image

from stylecli.pipeline.editor import to_uint8


@pytest.fixture
def direction_registry(tmp_path, monkeypatch):
    """A registry whose 'age' entry is a real-format [1, dim] tensor, installed with `weights import`."""
    age = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "age.pt"
    torch.save(age, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    toml = tmp_path / "weights.toml"
    toml.write_text(f'[age]\nwhat = "t"\nkind = "direction"\nfile = "age.pt"\nsha256 = "{sha}"\nlicense = "t"\n'
                    f'sources = [{{ url = "https://example.invalid/age.pt" }}]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(toml))
    return age, path


def test_edit_from_image_with_registry_direction(tmp_path, tiny_checkpoint, face_png, direction_registry):
    age, path = direction_registry
    out = tmp_path / "out"
    args = ("edit", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json", "-d", "age")
    result = invoke(*args)
    # offline, not installed yet: a failed download (exit 3), said once, before any input (no records)
    assert result.exit_code == 3 and result.stdout == "" and not out.exists()
    assert "stylecli weights import age PATH" in result.stderr
    assert invoke("weights", "import", "age", path).exit_code == 0
    result = invoke(*args, "-s", "2", "--save-latent")
    assert result.exit_code == 0, result.stderr
    rec = records(result)[0]
    assert set(rec["outputs"]) == {"age+2", "age+2.latent"}
    edited = np.load(out / "face_age+2.npy")
    model = tiny_model()
    from stylecli.pipeline.editor import preprocess

    with torch.no_grad():
        code = model.encode(preprocess(np.asarray(Image.open(face_png).convert("RGB")))[None])
        np.testing.assert_allclose(edited, (code + 2 * age)[0].numpy(), atol=1e-5)
        expected = to_uint8(model.synthesize(torch.from_numpy(edited)[None]))[0]
    got = np.asarray(Image.open(out / "face_age+2.png"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_sweep_grid_gif_from_a_saved_latent(tmp_path, tiny_checkpoint):
    code = np.random.default_rng(0).standard_normal((8, 32)).astype(np.float32)
    np.save(tmp_path / "me.npy", code)
    out = tmp_path / "out"
    result = invoke("edit", tmp_path / "me.npy", "--checkpoint", tiny_checkpoint, "-o", out, "--json",
                    "-d", "sefa:0", "--sweep", "-2:2:3", "--grid", "--gif")
    assert result.exit_code == 0, result.stderr
    outputs = records(result)[0]["outputs"]
    assert set(outputs) == {"sefa-0_0-2", "sefa-0_1+0", "sefa-0_2+2", "grid", "gif"}
    model = tiny_model()
    with torch.no_grad():
        plain = to_uint8(model.synthesize(torch.from_numpy(code)[None]))[0]
    assert np.abs(np.asarray(Image.open(outputs["sefa-0_1+0"])).astype(int) - plain.astype(int)).max() <= 1
    grid = np.asarray(Image.open(outputs["grid"]))
    assert grid.shape[1] == 4 * 256  # inversion + 3 strengths (no input image for a latent)
    gif = Image.open(outputs["gif"])
    assert gif.n_frames == 4  # forth and back


def test_paste_back_from_image_and_from_saved_latent(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    out = tmp_path / "out"
    result = invoke("edit", photo, "--checkpoint", tiny_checkpoint, "-o", out, "--json", "-d", "sefa:2",
                    "-s", "4", "--paste-back")
    assert result.exit_code == 0, result.stderr
    pasted = np.asarray(Image.open(out / "astronaut_sefa-2+4_pasted.png"))
    original = data.astronaut()
    assert pasted.shape == original.shape
    assert np.array_equal(pasted[300:], original[300:]) and not np.array_equal(pasted, original)

    inv = tmp_path / "inv"
    assert invoke("invert", photo, "--checkpoint", tiny_checkpoint, "-o", inv).exit_code == 0
    result = invoke("edit", inv / "astronaut.npy", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "again",
                    "--json", "-d", "sefa:2", "-s", "4", "--paste-back")
    assert result.exit_code == 0, result.stderr
    again = np.asarray(Image.open(tmp_path / "again" / "astronaut_sefa-2+4_pasted.png"))
    assert np.abs(again.astype(int) - pasted.astype(int)).max() <= 1

    (tmp_path / "lone").mkdir()
    np.save(tmp_path / "lone" / "x.npy", np.load(inv / "astronaut.npy"))
    result = invoke("edit", tmp_path / "lone" / "x.npy", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o3",
                    "--json", "-d", "sefa:2", "--paste-back")
    assert result.exit_code == 1 and ".align.json" in records(result)[0]["error"]


@pytest.mark.slow
def test_paste_back_of_every_face_gives_one_photo_per_variant(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    from skimage import data

    original = np.hstack([data.astronaut(), data.astronaut()[:, ::-1]])
    Image.fromarray(original).save(tmp_path / "pair.png")
    out = tmp_path / "out"
    result = invoke("edit", tmp_path / "pair.png", "--checkpoint", tiny_checkpoint, "-o", out, "--json",
                    "--faces", "all", "-d", "sefa:2", "-s", "4", "--paste-back")
    assert result.exit_code == 0, result.stderr
    outputs = records(result)[0]["outputs"]
    assert outputs["sefa-2+4.pasted"] == str(out / "pair_sefa-2+4_pasted.png")
    assert {"face0.sefa-2+4", "face1.sefa-2+4"} <= set(outputs) and not any("face" in k and "pasted" in k
                                                                          for k in outputs)
    pasted = np.asarray(Image.open(out / "pair_sefa-2+4_pasted.png"))
    left, right = slice(0, 512), slice(512, 1024)
    assert not np.array_equal(pasted[:300, left], original[:300, left])  # both faces edited in one photo
    assert not np.array_equal(pasted[:300, right], original[:300, right])
    assert np.array_equal(pasted[300:], original[300:])
    args = ("edit", tmp_path / "pair.png", "--checkpoint", tiny_checkpoint, "-o", out, "--json", "--faces", "all",
            "-d", "sefa:2", "-s", "4", "--paste-back")
    again = invoke(*args)
    assert again.exit_code == 1 and "exists" in records(again)[0]["error"]
    assert records(invoke(*args, "--skip-existing"))[0]["status"] == "skipped"
    (out / "pair_sefa-2+4_pasted.png").unlink()  # the combined photo is an output of the input too
    resumed = invoke(*args, "--skip-existing")
    assert records(resumed)[0]["status"] == "done" and (out / "pair_sefa-2+4_pasted.png").is_file()


def test_edit_errors(tmp_path, tiny_checkpoint, face_png):
    base = ("edit", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o")
    result = invoke(*base, "-d", "agee")
    assert result.exit_code == 2 and result.stderr.count("did you mean age") == 1  # a usage error, said once
    assert invoke(*base, "-d", "sefa:0", "-d", "sefa:1", "--sweep", "0:1:3").exit_code == 2
    assert invoke(*base, "-d", "sefa:0", "--sweep", "0:1").exit_code == 2
    assert invoke(*base, "-d", "sefa:0", "-s", "1", "-s", "2").exit_code == 2
    np.save(tmp_path / "wrong.npy", np.zeros((18, 32), np.float32))
    result = invoke("edit", tmp_path / "wrong.npy", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "--json",
                    "-d", "sefa:0")
    assert result.exit_code == 1 and "latent is [18, 32]; this model takes [8, 32]" in records(result)[0]["error"]


def test_mix_and_directions(tmp_path, tiny_checkpoint):
    a = np.random.default_rng(1).standard_normal((8, 32)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    result = invoke("mix", tmp_path / "a.npy", tmp_path / "b.npy", "--layers", "4-7", "-o", tmp_path / "m.png",
                    "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0, result.stderr
    mixed = np.concatenate([a[:4], b[4:]])
    with torch.no_grad():
        expected = to_uint8(tiny_model().synthesize(torch.from_numpy(mixed)[None]))[0]
    assert np.abs(np.asarray(Image.open(tmp_path / "m.png")).astype(int) - expected.astype(int)).max() <= 1
    result = invoke("directions", "--json")
    names = [json.loads(line)["name"] for line in result.stdout.splitlines()]
    assert {"age", "smile", "pose", "ganspace:white_hair", "sefa:K"} <= set(names)
    cars = [json.loads(line)["name"] for line in invoke("directions", "--model", "cars", "--json").stdout.splitlines()]
    assert "ganspace:cube" in cars and "age" not in cars and "ganspace:white_hair" not in cars
    horse = invoke("directions", "--model", "e4e_horse", "--json").stdout.splitlines()
    horse = [json.loads(line)["name"] for line in horse]
    assert horse == ["sefa:K", "PATH.pt|PATH.npy"]


def test_blend_seamless_changes_only_the_face_region(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    from skimage import data

    from stylecli.faces import face_region

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    outs = {}
    for blend in ("feather", "seamless"):
        out = tmp_path / blend
        result = invoke("edit", photo, "--checkpoint", tiny_checkpoint, "-o", out, "--json", "-d", "sefa:2",
                        "-s", "4", "--paste-back", "--blend", blend)
        assert result.exit_code == 0, result.stderr
        pasted = [p for p in records(result)[0]["outputs"].values() if p.endswith(".png") and "pasted" in p]
        assert len(pasted) == 1
        outs[blend] = np.asarray(Image.open(pasted[0]))
    assert not np.array_equal(outs["feather"], outs["seamless"])  # the option reached paste_back
    from stylecli.faces import FaceAligner

    original = data.astronaut()
    quad = FaceAligner().detect(original)[0].quad  # unrounded (the sidecar keeps 3 decimals)
    region = face_region(original.shape[:2], quad, size=32)  # the tiny generator renders 32 px faces
    for blend, image in outs.items():
        changed = np.any(image != original, axis=2)
        assert not (changed & ~region).any(), f"{blend}: {(changed & ~region).sum()} pixels changed outside"
        assert changed.any()
