"""Named directions (registry, domains, GANSpace presets), --keep, `directions learn` and `directions preview`,
on real-format files built here (direction tensors saved with a CUDA storage location, PCA dicts, checkpoints)."""

import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
import torch.serialization as ts
from conftest import shifted_faces, tiny_model
from helpers import invoke, official_ganspace, real_format_pca
from PIL import Image, ImageFont

from stylecli.editing import resolve_edit
from stylecli.editing.base import EditError
from stylecli.editing.catalog import check_domain, model_domain, named_directions
from stylecli.editing.conditional import condition, condition_edits, conditioned_edit
from stylecli.editing.ganspace import NAMED_EDITS, ganspace_edit
from stylecli.editing.interfacegan import DirectionEdit
from stylecli.files.sheets import LABEL_HEIGHT
from stylecli.pipeline.editor import to_uint8
from stylecli.registry import weights

NADA = {
    "gender": "c402b7f02285609cb14894d5b2d18a3276f8dc25c8d24d8859547ec937809fe9",
    "beard": "159e7087677073df65d0058e081667c1c4ff89b8f9f14a65660c86802ad1c641",
    "hair_length": "e41190b531d0fc5283fbdc80024aac4b32171d138547154654136ef487e29849",
}


def save_as_if_on_gpu(tensor, path):
    """torch.save with every storage tagged 'cuda:0', as the published direction files were written."""

    def tagger(storage):
        return "cuda:0"

    ts.register_package(-1000, tagger, lambda obj, location: None)
    try:
        torch.save(tensor, path)
    finally:
        ts._package_registry[:] = [e for e in ts._package_registry if e[1] is not tagger]


def unit(shape, seed):
    d = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return d / d.norm(dim=-1, keepdim=True)


# --- the registry ------------------------------------------------------------------------------------------

def test_registry_pins_the_stylegan_nada_boundaries():
    registry = weights.load_registry(weights.REGISTRY_FILE)
    for name, sha in NADA.items():
        entry = registry[name]
        assert (entry.sha256, entry.size, entry.kind, entry.domain) == (sha, 2795, "direction", "ffhq")
        assert "MIT" in entry.license and "StyleGAN-nada" in entry.license
        (source,) = entry.sources
        assert source["url"] == ("https://raw.githubusercontent.com/rinongal/StyleGAN-nada/"
                                 f"dc8406ae2173ad186f8f03f3cadf65e613ac9364/editing/interfacegan_boundaries/{name}.pt")
    named = named_directions(None, registry)
    assert all(d.domain in ("ffhq", "cars") for d in named)  # every named direction carries its domain
    assert {d.name for d in named} >= {"gender", "beard", "hair_length", "ganspace:bald", "ganspace:redness"}
    assert registry["e4e_cars"].domain == "cars" and registry["e4e_horse"].domain == "horse"


def test_gpu_saved_boundaries_load_on_the_cpu_and_edit(tmp_path, monkeypatch):
    files = {}
    for i, name in enumerate(NADA):
        files[name] = tmp_path / f"{name}.pt"
        save_as_if_on_gpu(unit((1, 512), i), files[name])
    with zipfile.ZipFile(files["gender"]) as z:  # the storage location as a GPU-saved file records it
        assert b"cuda:0" in z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    if not torch.cuda.is_available():  # the files really say cuda:0: a plain load fails here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(files["gender"], weights_only=True)
    # Through a registry (domain ffhq), installed with `weights import`, as a user would.
    toml = tmp_path / "weights.toml"
    toml.write_text("".join(
        f'[{n}]\nkind = "direction"\nfile = "{n}.pt"\nsha256 = "{hashlib.sha256(p.read_bytes()).hexdigest()}"\n'
        f'license = "MIT"\ndomain = "ffhq"\nsources = [{{ url = "https://example.invalid/{n}.pt" }}]\n\n'
        for n, p in files.items()))
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(toml))
    codes = torch.randn(2, 18, 512)
    for i, name in enumerate(NADA):
        assert invoke("weights", "import", name, files[name]).exit_code == 0
        edit = resolve_edit(name, 18)
        assert isinstance(edit, DirectionEdit) and edit.domain == "ffhq"
        torch.testing.assert_close(edit.apply(codes, -2.0), codes - 2.0 * unit((1, 512), i))


# --- GANSpace presets --------------------------------------------------------------------------------------

def test_ganspace_presets_are_the_published_values():
    ffhq, cars = NAMED_EDITS["ffhq_pca"], NAMED_EDITS["cars_pca"]
    assert len(ffhq) == 5 + 32 and len(cars) == 5 + 3
    assert ffhq["frizzy_hair"] == (31, 2, 6, 20) and ffhq["caricature_smile"] == (26, 3, 8, 13)
    assert ffhq["overexposed"] == (27, 8, 18, 15) and ffhq["show_front_teeth"] == (59, 4, 5, 40)
    assert ffhq["disgusted"] == (43, 6, 8, -30) and ffhq["boyishness"] == (8, 2, 5, 20)
    assert cars["redness"] == (22, 9, 11, -8) and cars["add_grass"] == (41, 9, 11, -18)
    assert cars["blocky_shape"] == (16, 3, 6, 25)


@pytest.mark.parametrize("pca_name,n_styles,name", [
    ("ffhq_pca", 18, "bald"), ("ffhq_pca", 18, "overexposed"), ("ffhq_pca", 18, "in_awe"),
    ("ffhq_pca", 18, "face_roundness"), ("cars_pca", 16, "redness"), ("cars_pca", 16, "blocky_shape"),
])
def test_new_ganspace_presets_match_the_published_formula(tmp_path, pca_name, n_styles, name):
    pca = real_format_pca(tmp_path / f"{pca_name}.pt", seed=n_styles)
    edit = resolve_edit(f"ganspace:{name}", n_styles, resolve_file=lambda n: tmp_path / f"{n}.pt")
    assert edit.domain == pca_name.split("_")[0]
    idx, start, end, strength = NAMED_EDITS[pca_name][name]
    codes = torch.randn(2, n_styles, 512)
    for s in (None, -7.5):  # the preset, then --strength overriding it
        out = edit.apply(codes, s)
        for b in range(2):
            ref = official_ganspace(codes[b].numpy(), pca, idx, start, end, strength if s is None else s)
            np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-4)


# --- domains -------------------------------------------------------------------------------------------------

def test_a_direction_of_another_domain_is_refused_with_the_fix(tmp_path):
    with pytest.raises(EditError, match=r"age: a direction for ffhq models, and this model is a cars model.*sefa:K"):
        check_domain("age", "cars")
    with pytest.raises(EditError, match="a direction for cars models"):
        check_domain("ganspace:redness", "ffhq")
    pca = real_format_pca(tmp_path / "ffhq_pca.pt")
    bald = resolve_edit("ganspace:bald", 18, resolve_file=lambda n: tmp_path / f"{n}.pt")
    with pytest.raises(EditError, match="this model is a horse model"):
        check_domain(bald, "horse")
    for fine in (("age", "ffhq"), ("age", None), ("mine.npy", "cars"), ("sefa:3", "church"), (bald, "ffhq")):
        check_domain(*fine)
    check_domain(ganspace_edit({k: torch.as_tensor(v) for k, v in pca.items()}, 3, (0,), 0.0, "g"), "cars")
    assert model_domain("e4e_horse") == "horse" and model_domain("e4e_ffhq") == "ffhq"
    assert model_domain("cars") == "cars" and model_domain("mine") is None
    with pytest.raises(EditError, match="ganspace:bald: a direction for ffhq models, and this model is a cars model"):
        resolve_edit("ganspace:bald", 18, resolve_file=lambda n: tmp_path / f"{n}.pt", domain="cars")


# --- --keep ---------------------------------------------------------------------------------------------------

def projected_by_least_squares(primal, kept):
    """Independent: primal minus its orthogonal projection on span(kept) (normal equations), unit length."""
    c = np.stack(kept).astype(np.float64)
    p = primal.astype(np.float64)
    new = p - c.T @ np.linalg.solve(c @ c.T, c @ p)
    return new / np.linalg.norm(new)


def test_keep_projects_out_the_kept_directions():
    primal = torch.randn(1, 512, generator=torch.Generator().manual_seed(0)) * 3
    kept = [unit((1, 512), 1), unit((1, 512), 2) * 2 + 0.3 * primal, torch.randn(512) * 0.1]
    projected, cosine = condition(primal, kept)
    assert projected.shape == (1, 512) and projected.dtype == torch.float32
    assert abs(float(projected.norm()) - 1) < 1e-6
    for k in kept:
        k = k.reshape(-1)
        assert abs(float(projected[0].double() @ k.double()) / float(k.norm())) < 1e-6
    ref = projected_by_least_squares(primal[0].numpy(), [k.reshape(-1).numpy() for k in kept])
    np.testing.assert_allclose(projected[0].numpy(), ref, atol=1e-6)
    assert cosine == pytest.approx(float(primal[0] @ torch.from_numpy(ref).float()) / float(primal.norm()), abs=1e-6)
    same, one = condition(primal, [])
    assert one == pytest.approx(1.0) and torch.allclose(same, primal / primal.norm())
    with pytest.raises(EditError, match="span of the kept directions"):
        condition(kept[0], [kept[0] * 2])


def test_keep_works_row_by_row_for_per_layer_directions():
    pose = unit((18, 512), 3)
    gender, beard = unit((1, 512), 4), unit((18, 512), 5)
    projected, cosine = condition(pose, [gender, beard])
    assert projected.shape == (18, 512) and 0 < cosine < 1
    for layer in range(18):
        row = projected[layer].double()
        assert abs(float(row.norm()) - 1) < 1e-6
        assert abs(float(row @ gender[0].double())) < 1e-6 and abs(float(row @ beard[layer].double())) < 1e-6
    broadcast, _ = condition(gender, [beard])  # a [1, 512] direction kept against a per-layer one
    assert broadcast.shape == (18, 512)
    with pytest.raises(EditError, match="does not match"):
        condition(pose, [unit((16, 512), 6)])


def test_keep_builds_an_edit_and_refuses_ganspace(tmp_path):
    age = DirectionEdit(label="age", direction=unit((1, 512), 7) * 4, layers=(0, 1, 2), domain="ffhq")
    gender = DirectionEdit(label="gender", direction=unit((1, 512), 8))
    kept_edit, cosine = conditioned_edit(age, [gender])
    direction, _ = condition(age.direction, [gender.direction])
    assert kept_edit.label == "age" and kept_edit.layers == (0, 1, 2) and kept_edit.domain == "ffhq"
    codes = torch.randn(1, 18, 512)
    out = kept_edit.apply(codes, 3.0)
    torch.testing.assert_close(out[:, :3], codes[:, :3] + 3.0 * direction)
    assert torch.equal(out[:, 3:], codes[:, 3:])
    pca = {k: torch.as_tensor(v) for k, v in real_format_pca(tmp_path / "p.pt").items()}
    bald = ganspace_edit(pca, 21, (2, 3, 4), 20.0, "ganspace-bald")
    with pytest.raises(EditError, match="GANSpace edit.*target coordinate"):
        conditioned_edit(bald, [gender])
    with pytest.raises(EditError, match="cannot be kept"):
        conditioned_edit(age, [bald])
    edits, notes = condition_edits([(age, 2.0), (gender, None)], [kept_edit])
    assert [s for _, s in edits] == [2.0, None] and len(notes) == 2
    assert notes[1].startswith("gender keeping age: cosine ")
    assert condition_edits([(bald, None)], []) == ([(bald, None)], [])  # nothing kept: GANSpace is fine


# --- learn ----------------------------------------------------------------------------------------------------

def planted_latents(folder, direction, sign, count=30, seed=0):
    """W+ codes near W (one w per example, small per-layer offsets) displaced by sign * 1.5 along `direction`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        w = rng.standard_normal((1, 512)) * 0.1
        code = w + 0.05 * rng.standard_normal((18, 512)) + sign * 1.5 * direction
        np.save(folder / f"{i:02d}.npy", code.astype(np.float32))
    return folder


def test_learn_recovers_a_planted_direction_from_latents(tmp_path):
    planted = unit((512,), 9).numpy().astype(np.float64)
    pos = planted_latents(tmp_path / "pos", planted, +1, seed=1)
    neg = planted_latents(tmp_path / "neg", planted, -1, seed=2)
    out = tmp_path / "glasses.npy"
    result = invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    learned = np.load(out)
    assert learned.dtype == np.float32 and learned.shape == (1, 512)
    assert abs(np.linalg.norm(learned) - 1) < 1e-5 and float(learned[0] @ planted) >= 0.9
    side = json.loads((tmp_path / "glasses.npy.json").read_text())
    assert (side["positive"], side["negative"], side["folds"], side["layer"]) == (30, 30, 5, "mean")
    assert side["held_out_accuracy"] >= 0.9 and "latents" in side["model"]
    assert json.loads(result.stdout)["held_out_accuracy"] == side["held_out_accuracy"]
    assert "warning" not in result.stderr
    edit = resolve_edit(str(out), 18)  # works as a direction file, --keep included
    kept, _ = conditioned_edit(edit, [DirectionEdit(label="g", direction=unit((1, 512), 10))])
    assert abs(float(kept.direction[0] @ unit((512,), 10))) < 1e-6
    layer0 = invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", tmp_path / "l0.pt",
                    "--layer", "0")
    assert layer0.exit_code == 0 and torch.load(tmp_path / "l0.pt", weights_only=True).shape == (1, 512)


def test_learn_refuses_too_few_examples_and_warns_on_poor_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    for side, count in (("pos", 4), ("neg", 8)):
        (tmp_path / side).mkdir()
        for i in range(count):
            np.save(tmp_path / side / f"{i}.npy", rng.standard_normal((18, 512)).astype(np.float32))
    out = tmp_path / "d.npy"
    few = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg", "-o", out)
    assert few.exit_code == 2 and "at least 5 examples on each side" in few.stderr and not out.exists()
    np.save(tmp_path / "pos" / "4.npy", rng.standard_normal((18, 512)).astype(np.float32))
    poor = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg", "-o", out)
    assert poor.exit_code == 0 and "warning: held-out accuracy" in poor.stderr and out.exists()
    again = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg", "-o", out)
    assert again.exit_code == 2 and "exists" in again.stderr
    bad = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg",
                 "-o", tmp_path / "d.txt")
    assert bad.exit_code == 2
    missing = invoke("directions", "learn", "--positive", tmp_path / "pos", "--positive", tmp_path / "gone.jpg",
                     "--negative", tmp_path / "neg", "-o", tmp_path / "e.npy")
    assert missing.exit_code == 2 and "gone.jpg: no such file or folder" in missing.stderr


@pytest.mark.slow
def test_learn_from_photos_end_to_end(tmp_path, tiny_checkpoint, face_png):
    """Bright versus dark crops, inverted by a tiny e4e: a direction of the model's width, from the photos."""
    pos = shifted_faces(tmp_path / "bright", face_png, 5, 9, "b")
    neg = shifted_faces(tmp_path / "dark", face_png, 4, 7, "d")
    for p in neg.iterdir():
        Image.fromarray((np.asarray(Image.open(p)) * 0.4).astype(np.uint8)).save(p)
    np.save(neg / "saved.npy", np.zeros((8, 32), np.float32))  # a latent among the photos
    out = tmp_path / "bright.npy"
    result = invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", out, "--no-align",
                    "--checkpoint", tiny_checkpoint, "--batch-size", "3")  # 2 encoder calls per side
    assert result.exit_code == 0, result.stderr
    assert "inverting positive examples: 5/5" in result.stderr and "inverting negative examples: 4/4" in result.stderr
    learned = np.load(out)
    assert learned.shape == (1, 32) and abs(np.linalg.norm(learned) - 1) < 1e-5
    side = json.loads((tmp_path / "bright.npy.json").read_text())
    assert (side["positive"], side["negative"]) == (5, 5) and side["model"] == str(tiny_checkpoint)
    # The codes the same weights give the photos: the direction points from the dark ones to the bright ones.
    from stylecli.pipeline.editor import FaceEditor

    photos = [np.asarray(Image.open(p)) for p in (pos / "b0.png", neg / "d0.png", neg / "d3.png")]
    codes = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu").encode(photos).codes.numpy().mean(axis=1)
    score = codes @ learned[0]
    assert score[0] > max(score[1], score[2], 0.0)  # 0.0: the saved zero latent


# --- preview --------------------------------------------------------------------------------------------------

def test_preview_sheet_rows_cells_and_labels(tmp_path, tiny_checkpoint):
    code = np.random.default_rng(3).standard_normal((8, 32)).astype(np.float32)
    np.save(tmp_path / "face.npy", code)
    mine = unit((1, 32), 11)
    torch.save(mine, tmp_path / "mine.pt")
    out = tmp_path / "sheet.png"
    names = f"sefa:0,{tmp_path / 'mine.pt'},ganspace:bald"  # the tiny model has no GANSpace PCA: that row fails
    result = invoke("directions", "preview", tmp_path / "face.npy", "-o", out, "--names", names, "--strength", "2",
                    "--cell", "48", "--checkpoint", tiny_checkpoint, "--json")
    assert result.exit_code == 1 and "ganspace:bald" not in json.dumps(json.loads(result.stdout)["rows"])
    assert "no GANSpace PCA file is known for a model with 8 style layers" in result.stderr
    sheet = Image.open(out)
    rows = json.loads(sheet.text["stylecli"])["rows"]
    assert [r["direction"] for r in rows] == ["sefa:0", str(tmp_path / "mine.pt")]
    assert all(r["strengths"] == [-2.0, 0.0, 2.0] for r in rows)
    pixels = np.asarray(sheet)
    height, width = pixels.shape[:2]
    name_width = width - 3 * 48
    assert height == 2 * (48 + LABEL_HEIGHT)
    assert name_width >= ImageFont.load_default().getlength(str(tmp_path / "mine.pt"))  # the name is never cut
    model = tiny_model()
    with torch.no_grad():
        expected = to_uint8(model.synthesize(torch.from_numpy(code)[None] + 2.0 * mine.unsqueeze(0)))[0]
    cell = np.asarray(Image.fromarray(expected).resize((48, 48), Image.Resampling.LANCZOS))
    y = 48 + LABEL_HEIGHT + LABEL_HEIGHT  # second row's image
    np.testing.assert_array_equal(pixels[y: y + 48, name_width + 96: name_width + 144], cell)
    for r in range(2):  # each row has a name and three cell labels drawn in black
        top = r * (48 + LABEL_HEIGHT)
        assert (pixels[top + LABEL_HEIGHT: top + LABEL_HEIGHT + 48, :name_width] < 100).any()
        for c in range(3):
            assert (pixels[top: top + LABEL_HEIGHT, name_width + 48 * c: name_width + 48 * (c + 1)] < 100).any()
    assert invoke("directions", "preview", tmp_path / "face.npy", "-o", out, "--names", "sefa:0",
                  "--checkpoint", tiny_checkpoint).exit_code == 2  # exists: never replaced without --overwrite


# --- --keep in `edit` and in the FaceEditor ---------------------------------------------------------------------

def test_edit_keep_end_to_end(tmp_path, tiny_checkpoint):
    code = np.random.default_rng(4).standard_normal((8, 32)).astype(np.float32)
    np.save(tmp_path / "face.npy", code)
    save_as_if_on_gpu(unit((1, 32), 12) * 3, tmp_path / "age.pt")
    gender, beard = unit((1, 32), 13), unit((8, 32), 14)  # one [1, dim], one per-layer
    save_as_if_on_gpu(gender, tmp_path / "gender.pt")
    np.save(tmp_path / "beard.npy", beard.numpy())
    out = tmp_path / "out"
    result = invoke("edit", tmp_path / "face.npy", "-d", tmp_path / "age.pt", "-s", "2", "--save-latent", "--json",
                    "--keep", f"{tmp_path / 'gender.pt'},{tmp_path / 'beard.npy'}", "--checkpoint", tiny_checkpoint,
                    "-o", out)
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    (note,) = record["notes"]
    assert note.startswith("age keeping gender, beard: cosine ")
    assert record["outputs"]["age_keep-gender.beard+2"] == str(out / "face_age_keep-gender.beard+2.png")
    assert not (out / "face_age+2.png").exists()  # a conditioned edit never takes the plain edit's name
    moved = (np.load(out / "face_age_keep-gender.beard+2.npy") - code) / 2  # per layer: the projected direction
    cosine = float(note.split("cosine ")[1].split()[0])
    original = np.broadcast_to(unit((1, 32), 12).numpy(), (8, 32)).reshape(-1)
    expected_cosine = float(original @ moved.reshape(-1)) / (np.linalg.norm(original) * np.linalg.norm(moved))
    assert 0 < cosine < 1 and cosine == pytest.approx(expected_cosine, abs=1e-4)
    for layer in range(8):
        assert abs(np.linalg.norm(moved[layer]) - 1) < 1e-5
        assert abs(moved[layer] @ gender[0].numpy()) < 1e-5 and abs(moved[layer] @ beard[layer].numpy()) < 1e-5
    image = np.asarray(Image.open(out / "face_age_keep-gender.beard+2.png"))
    with torch.no_grad():
        expected = to_uint8(tiny_model().synthesize(torch.from_numpy(code + 2 * moved)[None]))[0]
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
    for bad in (("-d", "ganspace:bald", "--keep", "smile"), ("-d", "smile", "--keep", "ganspace:bald")):
        refused = invoke("edit", tmp_path / "face.npy", *bad, "--checkpoint", tiny_checkpoint, "-o", out)
        assert refused.exit_code == 2 and "GANSpace" in refused.stderr


def test_face_editor_keeps_directions(tmp_path, tiny_checkpoint, face_png):
    from stylecli.pipeline.editor import FaceEditor

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    np.save(tmp_path / "d.npy", unit((1, 32), 15).numpy() * 2)
    kept = DirectionEdit(label="k", direction=unit((1, 32), 16))
    photo = np.asarray(Image.open(face_png))
    (result,) = editor(photo, edits=[(str(tmp_path / "d.npy"), 1.5), [(str(tmp_path / "d.npy"), -1.0)]],
                       align=False, keep=[kept, "sefa:0"])
    (note,) = result.notes  # one note for the edit, however many variants use it
    assert note.startswith("d keeping k, sefa-0: cosine ")
    face = result.faces[0]
    delta = face.edits[0].code - face.code
    sefa = editor.resolve_edit("sefa:0").direction.numpy()
    assert abs(delta[0] @ kept.direction[0].numpy()) < 1e-5 and abs(delta[0] @ sefa) < 1e-5
    assert np.linalg.norm(delta[0]) == pytest.approx(1.5, abs=1e-5)
    np.testing.assert_allclose(face.edits[1].code - face.code, -delta / 1.5, atol=1e-5)
