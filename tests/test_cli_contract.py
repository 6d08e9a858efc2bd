"""The CLI contract: errors always shown, names never cut, option-aware output names, usage errors exit 2
said once, outputs checked before models load, contradictions refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_cli import invoke, records


def clean(result) -> bool:
    """Ended by the CLI itself (an exit code), not by an exception escaping it (a traceback for a user)."""
    return result.exception is None or isinstance(result.exception, SystemExit)


def test_quiet_silences_progress_but_never_errors(tmp_path, tiny_checkpoint, face_png):
    result = invoke("invert", tmp_path / "nope.jpg", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o",
                    tmp_path / "o", "-q")
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "nope.jpg: no such file" in lines[0]
    again = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "-q")
    assert again.exit_code == 1 and again.stderr.count("exists") == 1


def test_names_a_user_types_are_never_cut_in_pipes():
    result = invoke("directions")
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0][0] == "direction" and ["ganspace:eye_openness"] in [r[:1] for r in rows]
    assert all(len(r) == len(rows[0]) for r in rows) and "…" not in result.stdout
    listing = invoke("weights", "list")
    assert "hf://zhengchong/e4e/e4e_ffhq_encode.pt@main" in listing.stdout and "…" not in listing.stdout


def test_output_names_carry_the_layers_and_sweeps_sort_by_strength(tmp_path, tiny_checkpoint):
    np.save(tmp_path / "x.npy", np.zeros((8, 32), np.float32))
    base = ("edit", tmp_path / "x.npy", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "--json", "-d")
    plain = records(invoke(*base, "sefa:3", "-s", "5"))[0]["outputs"]
    layered = records(invoke(*base, "sefa:3", "-s", "5", "--layers", "0-3,6"))[0]["outputs"]
    assert list(plain) == ["sefa-3+5"] and list(layered) == ["sefa-3_layers0-3.6+5"]
    assert plain["sefa-3+5"] != layered["sefa-3_layers0-3.6+5"]
    swept = records(invoke(*base, "sefa:1", "--sweep", "-4:4:9"))[0]["outputs"]
    names = sorted(swept.values())
    assert [n.rsplit("_", 1)[1] for n in names] == [f"{i}{s:+d}.png" for i, s in enumerate(range(-4, 5))]


@pytest.mark.parametrize("args, message", [
    (("-d", "agee"), "did you mean age"),
    (("-d", "sefa:0", "--layers", "0-99"), "--layers"),
    (("-d", "ganspace:5"), "GANSpace"),
    (("-d", "sefa:0", "--device", "cuda"), "--device cuda"),
    (("-d", "sefa:0", "--model", "nosuch"), "nosuch"),
    (("-d", "sefa:0", "--checkpoint", "missing.pt"), "missing.pt"),
])
def test_usage_errors_exit_2_said_once_before_inputs(tmp_path, tiny_checkpoint, face_png, args, message):
    import torch

    if "--device" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    ckpt = () if "--checkpoint" in args or "--model" in args else ("--checkpoint", tiny_checkpoint)
    result = invoke("edit", face_png, face_png, "--no-align", *ckpt, "-o", tmp_path / "o", "--json", *args)
    lines = [line for line in result.stderr.splitlines() if line.startswith("stylecli: error:")]
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert result.stdout == "" and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", [
    ("-d", "sefa:0", "--sweep", "-1:1:3", "-s", "2"),
    ("-d", "sefa:0", "--overwrite", "--skip-existing"),
    ("-d", "sefa:0", "--faces", "all"),
])
def test_contradicting_options_are_refused(tmp_path, tiny_checkpoint, face_png, args):
    result = invoke("edit", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", *args)
    assert result.exit_code == 2 and not (tmp_path / "o").exists()


def test_output_folder_is_checked_before_the_model_loads(tmp_path, face_png, monkeypatch):
    from stylecli import weights

    monkeypatch.setattr(weights, "resolve", lambda *a, **k: pytest.fail("a model was resolved"))
    (tmp_path / "file").write_text("x")
    result = invoke("invert", face_png, "--no-align", "-o", tmp_path / "file" / "sub")
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr


def test_mix_follows_the_output_contract(tmp_path, tiny_checkpoint):
    for name, seed in (("a", 1), ("b", 2)):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(seed).standard_normal((8, 32)).astype(np.float32))
    base = ("mix", tmp_path / "a.npy", tmp_path / "b.npy", "--checkpoint", tiny_checkpoint)
    result = invoke(*base, "-o", tmp_path / "new" / "dir")  # a folder, created; default layers fit 8 styles
    made = tmp_path / "new" / "dir" / "a+b_layers4-7.png"
    assert result.exit_code == 0 and made.is_file(), result.stderr
    assert invoke(*base, "-o", tmp_path / "new" / "dir").exit_code == 2  # exists: said, no traceback
    assert invoke(*base, "-o", tmp_path / "new" / "dir", "--overwrite").exit_code == 0
    assert invoke(*base, "-o", tmp_path / "m.jpg", "--layers", "0-1").exit_code == 0
    assert Image.open(tmp_path / "m.jpg").format == "JPEG"
    bad = invoke(*base, "--layers", "8-17", "-o", tmp_path)
    assert bad.exit_code == 2 and clean(bad)


def test_weights_import_without_a_published_hash_checks_the_architecture(tmp_path, tiny_checkpoint, monkeypatch):
    from conftest import randomize

    from stylecli.checkpoint import ModelConfig, default_opts, save_checkpoint

    reg = tmp_path / "weights.toml"
    reg.write_text('[e4e_horse]\nwhat = "t"\nkind = "checkpoint"\ndomain = "horse"\nfile = "h.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    (tmp_path / "notes.txt").write_text("not a model")
    text = invoke("weights", "import", "e4e_horse", tmp_path / "notes.txt")
    assert text.exit_code == 1 and "nothing was installed" in text.stderr
    wrong = invoke("weights", "import", "e4e_horse", tiny_checkpoint)  # 8 style layers, not 14
    assert wrong.exit_code == 1 and "14" in wrong.stderr and "nothing was installed" in wrong.stderr
    config = ModelConfig(size=256, kind="e4e", style_dim=32, widths=(16, 16, 32, 32),
                         channels={4: 16, 8: 16, 16: 16, 32: 8, 64: 8, 128: 8, 256: 8}, n_mlp=2)
    horse = tmp_path / "horse.pt"
    save_checkpoint(randomize(config.build()), horse, default_opts(config, dataset_type="horse_encode"))
    ok = invoke("weights", "import", "e4e_horse", horse)
    assert ok.exit_code == 0 and "not verified against a published hash" in ok.stderr, ok.stderr
    assert invoke("weights", "import", "nosuch", horse).exit_code == 2


def test_a_cache_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    reg = tmp_path / "weights.toml"
    reg.write_text('[thing]\nwhat = "t"\nkind = "data"\nfile = "t.bin"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    monkeypatch.setenv("STYLECLI_CACHE", str(tmp_path / "blocker" / "cache"))
    import torch

    torch.save({"x": torch.zeros(1)}, tmp_path / "t.bin")
    result = invoke("weights", "import", "thing", tmp_path / "t.bin")
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1 and clean(result)


def test_evaluate_out_of_the_box(tmp_path, tiny_checkpoint, face_png, monkeypatch):
    from stylecli import evaluation

    real = evaluation.missing_package
    monkeypatch.setattr(evaluation, "missing_package", lambda m: "pip install 'stylecli[eval]'" if m in (
        "lpips", "msssim") else real(m))
    names, notes = evaluation.parse_metrics(None)
    assert names == ["l2", "id", "lec"] and "lpips, msssim" in notes[0] and "stylecli[eval]" in notes[0]
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.open(face_png).rotate(90 * i).save(folder / f"f{i}.png")
    base = ("evaluate", folder, "--checkpoint", tiny_checkpoint, "--json")
    missing = invoke(*base, "--metrics", "l2,msssim")
    assert missing.exit_code == 2 and "pip install 'stylecli[eval]'" in missing.stderr and missing.stdout == ""
    result = invoke(*base, "--metrics", "l2,speed", "--csv", tmp_path / "r.csv")
    assert result.exit_code == 0, result.stderr
    doc = __import__("json").loads(result.stdout)
    assert 0 < doc["results"][0]["metrics"]["l2"]["mean"] <= 4  # images in [-1, 1]: clamped reconstructions
    assert doc["results"][0]["speed"]["encode_s_per_image"] > 0
    again = invoke(*base, "--metrics", "l2", "--csv", tmp_path / "r.csv")
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert invoke(*base, "--metrics", "l2", "--csv", tmp_path / "r.csv", "--overwrite").exit_code == 0


def test_converted_copies_are_announced_listed_and_cleaned(tmp_path, tiny_checkpoint, face_png):
    base = ("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--latent-only")
    first = invoke(*base, "-o", tmp_path / "a")
    assert first.exit_code == 0 and "fast-loading copy" in first.stderr
    assert "fast-loading copy" not in invoke(*base, "-o", tmp_path / "b").stderr  # made once
    listing = invoke("cache", "list", "--json")
    rows = records(listing)
    assert len(rows) == 1 and rows[0]["source"] == str(tiny_checkpoint.resolve())
    assert invoke("cache", "clean", "--older-than", "30d").exit_code == 0 and len(records(invoke("cache", "list",
                                                                                            "--json"))) == 1
    assert invoke("cache", "clean").exit_code == 0 and records(invoke("cache", "list", "--json")) == []
    assert invoke("cache", "clean", "--older-than", "soon").exit_code == 2


def test_an_image_given_as_checkpoint_is_named_as_such(tmp_path, face_png):
    Image.open(face_png).save(tmp_path / "photo.jpg")
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tmp_path / "photo.jpg", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "not a checkpoint but a JPEG image" in result.stderr


def test_conversions_are_noted_and_an_empty_folder_is_named(tmp_path, face_png):
    from stylecli.images import read_image

    Image.open(face_png).convert("L").save(tmp_path / "grey.png")
    Image.open(face_png).convert("P").save(tmp_path / "pal.png")
    assert read_image(tmp_path / "grey.png").notes == ["grayscale image converted to RGB"]
    assert read_image(tmp_path / "pal.png").notes == ["palette image converted to RGB"]
    (tmp_path / "empty").mkdir()
    result = invoke("align", tmp_path / "empty", "-o", tmp_path / "o")
    assert result.exit_code == 2 and str(tmp_path / "empty") in result.stderr


def test_output_keys_do_not_depend_on_the_faces_option(tmp_path):
    pytest.importorskip("dlib")
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "a.png")
    keys = [set(records(invoke("align", tmp_path / "a.png", "-o", tmp_path / f"o{i}", "--json", *extra))[0]["outputs"])
            for i, extra in enumerate([(), ("--faces", "0"), ("--faces", "all")])]
    assert keys[0] == keys[1] == keys[2] == {"face0.aligned", "face0.alignment"}


def test_cli_functions_stay_short():
    """The CLI only parses, calls the library and prints: no function in these modules is over 60 lines."""
    import ast
    from pathlib import Path

    import stylecli.cli

    folder = Path(stylecli.cli.__file__).parent
    for name in ("photos.py", "evaluate_cmd.py", "weights_cmd.py", "cache_cmd.py", "common.py"):
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                assert node.end_lineno - start < 60, f"{name}:{node.name}"


def test_align_without_a_face_suggests_only_its_own_options(tmp_path):
    pytest.importorskip("dlib")
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(tmp_path / "wall.png")
    result = invoke("align", tmp_path / "wall.png", "-o", tmp_path / "o", "-q")
    assert result.exit_code == 1 and "no face found" in result.stderr and "--no-align" not in result.stderr
