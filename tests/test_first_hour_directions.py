"""Issue 24, point 7: directions, preview, learn and train as a new user meets them (offline, tiny models)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shifted_faces
from helpers import invoke, records, write_registry
from PIL import Image

from stylecli.editing.base import Edit, EditError
from stylecli.editing.catalog import listing, named_directions, suggested_range
from stylecli.editing.preview import row_strengths
from stylecli.editing.resolve import check_spec, resolve_edit

# A registry of two directions with no domain (trusted on any model): `age` is on this machine, `smile` is not.
OFFLINE_REGISTRY = """
[age]
file = "age.pt"
kind = "direction"
domain = ""
sources = [{url = "https://example.invalid/age.pt"}]

[smile]
file = "smile.pt"
kind = "direction"
domain = ""
sources = [{url = "https://example.invalid/smile.pt"}]
"""


def _latent(tmp_path, seed=3):
    np.save(tmp_path / "face.npy", np.random.default_rng(seed).standard_normal((8, 32)).astype(np.float32))
    return tmp_path / "face.npy"


def _sheet_rows(path):
    return json.loads(Image.open(path).text["stylecli"])["rows"]


# --- 1. `directions preview` without --names renders what it can, offline ---------------------------------

def test_preview_without_names_renders_what_is_here_and_says_what_was_left_out(tmp_path, tiny_checkpoint,
                                                                              monkeypatch):
    import os

    write_registry(tmp_path, monkeypatch, OFFLINE_REGISTRY)
    here = Path(os.environ["STYLECLI_CACHE"]) / "weights" / "age" / "age.pt"
    here.parent.mkdir(parents=True)
    torch.save(torch.ones(1, 32) / 32**0.5, here)
    out = tmp_path / "sheet.png"
    result = invoke("directions", "preview", _latent(tmp_path), "-o", out, "--checkpoint", tiny_checkpoint,
                    "--cell", "32", "-q")
    assert result.exit_code == 0, result.stderr
    assert [r["direction"] for r in _sheet_rows(out)] == ["age"]  # the FFHQ presets do not fit 8 layers
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylecli: note: left out 1 named direction ")
    assert "`stylecli weights pull smile`" in lines[0] and "error" not in result.stderr


def test_preview_without_any_named_file_shows_sefa_in_its_listed_range(tmp_path, tiny_checkpoint, monkeypatch):
    write_registry(tmp_path, monkeypatch, OFFLINE_REGISTRY)
    out = tmp_path / "sheet.png"
    result = invoke("directions", "preview", _latent(tmp_path), "-o", out, "--checkpoint", tiny_checkpoint,
                    "--cell", "32", "--json")
    assert result.exit_code == 0, result.stderr
    rows = _sheet_rows(out)
    assert [r["direction"] for r in rows] == [f"sefa:{k}" for k in range(5)]
    assert "left out 2 named directions" in result.stderr and "SeFa's instead" in result.stderr
    assert "weights pull age smile`" in result.stderr and "error" not in result.stderr
    sefa = next(r for r in listing(None) if r["name"] == "sefa:K")
    assert all(r["strengths"] == [sefa["range"][0], 0.0, sefa["range"][1]] for r in rows)
    assert records(result)[0]["rows"] == rows


# --- 2. and 3. one source of truth for strengths ----------------------------------------------------------------

def test_preview_strengths_are_the_listed_ranges_and_defaults_lie_in_them():
    edit = Edit(label="x")
    rows = listing(None, every_domain=True)
    assert {r["kind"] for r in rows} >= {"interfacegan", "ganspace", "sefa", "file"}
    for row in rows:
        spec = row["name"].replace("sefa:K", "sefa:2")
        if row["range"] is None:
            assert suggested_range(spec) is None, spec
            continue
        low, high = row["range"]
        assert suggested_range(spec) == (low, high), spec
        assert row_strengths(spec, edit, None) == [low, 0.0, high], spec
        assert low <= row["default"] <= high, row  # beard: 2 in -2..2 (StyleGAN-nada's suggested distance)
        assert row["strength"] == f"{row['default']:g} ({low:g}..{high:g})"
    assert row_strengths("sefa:0", edit, 4.0) == [-4.0, 0.0, 4.0]


def test_a_named_direction_edits_at_the_default_it_is_listed_with(tmp_path):
    torch.save(torch.ones(1, 512), tmp_path / "d.pt")
    for d in named_directions("ffhq"):
        if d.kind == "interfacegan":
            edit = resolve_edit(d.name, 18, resolve_file=lambda name: tmp_path / "d.pt")
            assert edit.default_strength == d.default and d.range[0] <= d.default <= d.range[1], d.name
    beard = next(d for d in named_directions("ffhq") if d.name == "beard")
    assert (beard.default, beard.range) == (2.0, (-2.0, 2.0))
    listed = [json.loads(line) for line in invoke("directions", "--json").stdout.splitlines()]
    assert next(r for r in listed if r["name"] == "beard")["default"] == 2.0


# --- 4. `directions --checkpoint` lists what applies ------------------------------------------------------------

@pytest.mark.parametrize("n_styles, kept, dropped", [
    (14, set(), {"age", "ganspace:bald", "ganspace:grass"}),
    (16, {"ganspace:grass"}, {"age", "ganspace:bald"}),
    (18, {"age", "beard", "ganspace:bald"}, {"ganspace:grass"}),
])
def test_listing_keeps_what_fits_the_style_count_of_an_unknown_domain(n_styles, kept, dropped):
    names = {r["name"] for r in listing(None, every_domain=True, n_styles=n_styles)}
    assert kept <= names and not dropped & names and "sefa:K" in names
    assert "ganspace:bald" in {r["name"] for r in listing("ffhq", n_styles=n_styles)}  # a named domain: as written


def test_directions_of_a_checkpoint_of_unknown_domain_list_no_preset_that_cannot_apply(tiny_checkpoint):
    result = invoke("directions", "--checkpoint", tiny_checkpoint, "--json")
    assert result.exit_code == 0, result.stderr
    rows = records(result)
    assert {r["kind"] for r in rows} == {"sefa", "file"}, [r["name"] for r in rows]
    assert "found for 8-layer generators" in result.stderr


# --- 5. `learn` refuses the same example on both sides ------------------------------------------------------

def _latents(folder, seed, count=6):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        np.save(folder / f"{i}.npy", rng.standard_normal((18, 512)).astype(np.float32))
    return folder


def test_learn_refuses_overlapping_sets_before_any_work(tmp_path):
    pos, neg = _latents(tmp_path / "pos", 1), _latents(tmp_path / "neg", 2)
    out = tmp_path / "d.npy"
    same = invoke("directions", "learn", "--positive", pos, "--negative", pos, "-o", out)
    assert same.exit_code == 2 and len(same.stderr.splitlines()) == 1, same.stderr
    assert f"{pos / '0.npy'}: both a positive and a negative example" in same.stderr and not out.exists()
    (neg / "copy.npy").write_bytes((pos / "3.npy").read_bytes())  # another name, the same bytes
    copied = invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", out)
    assert copied.exit_code == 2 and len(copied.stderr.splitlines()) == 1, copied.stderr
    assert f"{neg / 'copy.npy'} (the same bytes as {pos / '3.npy'})" in copied.stderr and not out.exists()
    (neg / "copy.npy").unlink()
    np.save(neg / "batched.npy", np.load(pos / "3.npy")[None])  # other bytes, the same code
    coded = invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", out)
    assert coded.exit_code == 2 and "1 code on both sides" in coded.stderr and not out.exists(), coded.stderr
    (neg / "batched.npy").unlink()
    assert invoke("directions", "learn", "--positive", pos, "--negative", neg, "-o", out).exit_code == 0


# --- 6. a direction file of NaN or Inf ----------------------------------------------------------------------

def test_a_direction_file_of_nan_or_inf_is_refused_when_checked(tmp_path, tiny_checkpoint):
    bad = np.full((1, 32), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", bad)
    torch.save(torch.tensor([[1.0] * 31 + [float("inf")]]), tmp_path / "inf.pt")
    for name in ("nan.npy", "inf.pt"):
        with pytest.raises(EditError, match=f"{name}: the direction holds .* NaN or Inf"):
            check_spec(str(tmp_path / name))
        with pytest.raises(EditError, match="NaN or Inf"):
            resolve_edit(str(tmp_path / name), 8)
    result = invoke("edit", _latent(tmp_path), "--direction", tmp_path / "nan.npy", "--checkpoint", tiny_checkpoint,
                    "-o", tmp_path / "out")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "nan.npy: the direction holds 32 NaN or Inf values" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- 7. train: which checkpoint, and --val-every needs --val-data ----------------------------------------------

def test_val_every_without_val_data_is_a_usage_error_before_any_work(tmp_path, face_png, monkeypatch):
    from stylecli.registry import weights

    monkeypatch.setattr(weights, "resolve", lambda *a, **k: pytest.fail("weights resolved before the check"))
    data = shifted_faces(tmp_path / "data", face_png, 2, 5, "a")
    result = invoke("train", "--data", data, "--out", tmp_path / "run", "--batch-size", "1", "--val-every", "5",
                    "-q")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "--val-every 5: there is nothing to validate on; give --val-data" in result.stderr
    assert not (tmp_path / "run").exists()


def test_train_ends_naming_the_checkpoint_it_wrote(tmp_path):
    from stylecli.cli.train_cmd import trained_line

    run = tmp_path / "run"
    run.mkdir()
    (run / "latest.pt").write_bytes(b"x")
    latest = f"trained to step 7: {run / 'latest.pt'} (no best.pt: it follows the --val-data loss)"
    assert trained_line(run, 7) == latest
    (run / "best.pt").write_bytes(b"x")
    assert trained_line(run, 7).startswith(f"trained to step 7: {run / 'best.pt'} (lowest validation loss")


def test_readme_training_continues_from_the_checkpoint_train_names():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    training = readme.split("## Training", 1)[1].split("\n## ", 1)[0]
    assert "--checkpoint runs/ffhq/best.pt" in training and "latest.pt without --val-data" in training
    assert "`--val-every` without\n  `--val-data` is a usage error" in training


# --- 8. `edit -h` names every InterFaceGAN direction, without torch or numpy ----------------------------------

def test_edit_help_names_every_named_direction_without_importing_torch():
    from stylecli.constants import INTERFACEGAN_NAMES
    from stylecli.editing.named import INTERFACEGAN

    assert tuple(INTERFACEGAN) == INTERFACEGAN_NAMES
    assert {"gender", "beard", "hair_length"} <= set(INTERFACEGAN_NAMES)
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "stylecli", "edit", "-h"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{', '.join(INTERFACEGAN_NAMES)}, ganspace:NAME" in " ".join(run.stdout.split())
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert imported and not {"torch", "numpy"} & imported


@pytest.mark.slow  # a real one-step run: about 15 s on 2 busy cores; trained_line is tested fast above
def test_a_train_run_without_val_data_ends_naming_latest(tmp_path, face_png):
    from test_training import _tiny_run_files

    g, arc = _tiny_run_files(tmp_path)
    data = shifted_faces(tmp_path / "data", face_png, 2, 5, "a")
    out = tmp_path / "run"
    result = invoke("train", "--data", data, "--generator", g, "--out", out, "--steps", "1", "--batch-size", "2",
                    "--lpips-lambda", "0", "--id-lambda", "0", "--encoder-init", arc, "--mean-latent-samples", "16",
                    "--workers", "0")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"trained to step 1: {out / 'latest.pt'} (no best.pt: it follows the " \
        "--val-data loss)"
    assert (out / "latest.pt").is_file() and not (out / "best.pt").exists()
