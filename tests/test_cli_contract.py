"""The CLI contract: errors always shown, names never cut, option-aware output names, usage errors exit 2
said once, outputs checked before models load, contradictions refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_cli import invoke, records


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
    lines = [line for line in result.stderr.splitlines() if line.strip()]
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
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr
