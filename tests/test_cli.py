"""The CLI contract: records, outputs, exit codes and one-line errors, on a tiny official-format checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model
from helpers import invoke, records
from PIL import Image

from stylecli.pipeline.editor import preprocess, to_uint8


def test_invert_writes_latent_and_image_matching_the_model(tmp_path, tiny_checkpoint, face_png):
    out = tmp_path / "out"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    assert rec["ok"] is True and rec["error"] is None and rec["input"] == str(face_png)
    assert rec["outputs"] == {"image": str(out / "face_inversion.png"), "latent": str(out / "face.npy")}
    code = np.load(out / "face.npy")
    image = np.asarray(Image.open(out / "face_inversion.png"))
    assert code.dtype == np.float32 and code.shape == (8, 32) and image.shape == (32, 32, 3)

    model = tiny_model()  # the same weights, computed directly
    x = preprocess(np.asarray(Image.open(face_png).convert("RGB")))[None]
    with torch.no_grad():
        expected_code = model.encode(x)
        expected_image = to_uint8(model.synthesize(expected_code))[0]
    np.testing.assert_allclose(code, expected_code[0].numpy(), atol=1e-5)
    assert np.abs(image.astype(int) - expected_image.astype(int)).max() <= 1
    # The saved latent re-renders to the same image: it is exactly the generator's input.
    with torch.no_grad():
        rerender = to_uint8(model.synthesize(torch.from_numpy(code)[None]))[0]
    assert np.abs(rerender.astype(int) - image.astype(int)).max() <= 1


def test_latent_only_writes_the_same_code_without_rendering(tmp_path, tiny_checkpoint, face_png):
    args = ("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--json")
    assert invoke(*args, "-o", tmp_path / "full").exit_code == 0
    result = invoke(*args, "-o", tmp_path / "codes", "--latent-only")
    assert result.exit_code == 0, result.stderr
    assert records(result)[0]["outputs"] == {"latent": str(tmp_path / "codes" / "face.npy")}
    assert sorted(p.name for p in (tmp_path / "codes").iterdir()) == ["face.npy"]
    codes, full = np.load(tmp_path / "codes" / "face.npy"), np.load(tmp_path / "full" / "face.npy")
    np.testing.assert_allclose(codes, full, atol=1e-5)  # (two model loads: float rounding may differ)
    again = invoke(*args, "-o", tmp_path / "codes", "--latent-only", "--skip-existing")
    assert records(again)[0]["status"] == "skipped"


def test_official_output_conversion():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 127, 191, 255, 255]


def test_batch_goes_on_after_a_bad_input_and_exit_code_is_1(tmp_path, tiny_checkpoint, face_png):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    out = tmp_path / "out"
    result = invoke("invert", broken, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 1
    bad, good = records(result)
    assert not bad["ok"] and "broken.jpg" in bad["error"] and "not an image" in bad["error"]
    assert bad["outputs"] == {}
    assert good["ok"]
    assert sorted(p.name for p in out.iterdir()) == ["face.npy", "face_inversion.png"]
    assert "Traceback" not in result.stderr


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, tiny_checkpoint, face_png):
    out = tmp_path / "out"
    out.mkdir()
    (out / "face.npy").write_bytes(b"keep me")
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 1
    assert "exists" in records(result)[0]["error"] and "--overwrite" in records(result)[0]["error"]
    assert (out / "face.npy").read_bytes() == b"keep me"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--overwrite")
    assert result.exit_code == 0
    assert np.load(out / "face.npy").shape == (8, 32)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "wrong_arch", "payload", "missing"])
def test_bad_checkpoints_are_usage_errors_said_once(tmp_path, tiny_checkpoint, face_png, kind):
    bad = tmp_path / f"{kind}.pt"
    marker = tmp_path / "payload-ran"
    if kind == "corrupt":
        bad.write_bytes(b"\x00garbage" * 100)
    elif kind == "truncated":
        bad.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    elif kind == "wrong_arch":
        torch.save({"state_dict": {"encoder.foo": torch.zeros(3)}, "opts": {}}, bad)
    elif kind == "payload":
        import os

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        torch.save({"state_dict": {}, "opts": Evil()}, bad)
    result = invoke("invert", face_png, "--no-align", "--checkpoint", bad, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("stylecli: error: ") and str(bad) in lines[0], result.stderr
    assert result.stdout == ""
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(tmp_path, face_png, tiny_checkpoint):
    result = invoke("invert", face_png, "--checkpoint", tiny_checkpoint, "--faces", "some")
    assert result.exit_code == 2 and "--faces" in result.stderr
    assert invoke("invert", face_png, "--no-align", "--device", "tpu").exit_code == 2
    assert invoke("invert", tmp_path / "empty_dir_does_not_exist", "--no-align", "--checkpoint",
                  tiny_checkpoint).exit_code == 1
    (tmp_path / "empty").mkdir()
    assert invoke("invert", tmp_path / "empty", "--no-align").exit_code == 2


def test_stdin_and_folder_inputs(tmp_path, tiny_checkpoint, face_png):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.open(face_png).save(folder / "a.png")
    Image.open(face_png).save(folder / "sub" / "a.jpg")  # same stem: outputs must not collide
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = invoke("invert", "-", "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json",
                    input=f"{folder}\n{face_png}\n{face_png}\n")
    assert result.exit_code == 0, result.stderr
    recs = records(result)
    assert [r["input"] for r in recs] == [str(folder / "a.png"), str(folder / "sub" / "a.jpg"), str(face_png)]
    assert recs[0]["outputs"]["latent"] != recs[1]["outputs"]["latent"]


def test_weights_commands(tmp_path, monkeypatch):
    result = invoke("weights", "list", "--json")
    assert result.exit_code == 0
    names = [json.loads(line)["name"] for line in result.stdout.splitlines()]
    assert "e4e_ffhq" in names and "age" in names
    result = invoke("weights", "pull", "e4e_cars")  # manual-only: set-up that no retry fixes
    assert result.exit_code == 2 and "stylecli weights import e4e_cars PATH" in result.stderr
    f = tmp_path / "x.pt"
    f.write_bytes(b"not the real file")
    result = invoke("weights", "import", "e4e_ffhq", f)
    assert result.exit_code == 1 and "does not match" in result.stderr
    result = invoke("weights", "pull", "e4e_fhq")  # an unknown name is a usage error
    assert result.exit_code == 2 and "did you mean e4e_ffhq" in result.stderr
    assert invoke("weights", "verify").exit_code == 0


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys; from stylecli.cli import app; "
            "from typer.testing import CliRunner; r = CliRunner().invoke(app, ['invert', '--help']); "
            "assert r.exit_code == 0 and 'Examples' in r.stdout; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "stylecli", "--help"], capture_output=True, text=True, check=True)
    assert "invert" in out.stdout


@pytest.fixture
def photos(tmp_path):
    from skimage import data

    astro = data.astronaut()
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astro).save(folder / "astronaut.jpg", quality=92)
    Image.fromarray(np.hstack([astro, astro[:, ::-1]])).save(folder / "pair.png")
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(folder / "wall.png")
    return folder


def test_invert_aligns_by_default(tmp_path, tiny_checkpoint, photos):
    pytest.importorskip("dlib")
    out = tmp_path / "out"
    result = invoke("invert", photos / "astronaut.jpg", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    assert set(rec["outputs"]) == {"face0.latent", "face0.image", "face0.aligned", "face0.alignment"}
    assert len(rec["faces"]) == 1 and len(rec["faces"][0]["landmarks"]) == 68
    side = json.loads((out / "astronaut.align.json").read_text())
    assert side["image_size"] == [512, 512] and np.array(side["quad"]).shape == (4, 2)
    assert np.asarray(Image.open(out / "astronaut_aligned.png")).shape == (256, 256, 3)


def test_align_every_face_no_face_is_a_per_file_error(tmp_path, photos):
    pytest.importorskip("dlib")
    out = tmp_path / "aligned"
    result = invoke("align", photos, "--faces", "all", "-o", out, "--json")
    assert result.exit_code == 1
    recs = {Path(r["input"]).name: r for r in records(result)}
    assert recs["astronaut.jpg"]["ok"] and set(recs["astronaut.jpg"]["outputs"]) == {"face0.aligned", "face0.alignment"}
    assert recs["pair.png"]["ok"] and len(recs["pair.png"]["faces"]) == 2
    assert (out / "pair_face0_aligned.png").is_file() and (out / "pair_face1_aligned.png").is_file()
    wall = recs["wall.png"]
    assert not wall["ok"] and "no face found in" in wall["error"] and "--no-align" not in wall["error"]
    assert not list(out.glob("wall*"))


@pytest.mark.parametrize("native_bf16", [True, False], ids=["cpu-with-bf16", "cpu-without-bf16"])
def test_precision_option_depends_on_the_cpu(tmp_path, tiny_checkpoint, face_png, monkeypatch, native_bf16):
    """bf16 on the CPU runs where oneDNN has native kernels (AMX / AVX512-BF16) and is refused elsewhere: both
    branches, whatever this machine's CPU (`cpu_supports` is looked up in stylecli.devices)."""
    monkeypatch.setattr("stylecli.devices.cpu_supports", lambda precision: native_bf16)
    args = ("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "--json")
    result = invoke(*args, "--precision", "bf16", "--device", "cpu")
    if native_bf16:
        assert result.exit_code == 0, result.stderr
        (rec16,) = records(result)
        assert rec16["outputs"]["latent"] == str(tmp_path / "o" / "face_bf16.npy")  # the name says bf16
        fp32 = invoke(*args)
        assert fp32.exit_code == 0, fp32.stderr
        (rec32,) = records(fp32)
        assert rec32["outputs"]["latent"] == str(tmp_path / "o" / "face.npy")
        code16, code32 = np.load(rec16["outputs"]["latent"]), np.load(rec32["outputs"]["latent"])
        assert 0 < np.abs(code32 - code16).max() < 0.5  # autocast ran: close to fp32, not equal
    else:
        assert result.exit_code == 2 and "no native bf16" in result.stderr
        assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
    assert invoke(*args, "--precision", "fp8").exit_code == 2


def test_weights_verify_reports_a_changed_file_and_tables_render(tmp_path, monkeypatch):
    import hashlib

    f = tmp_path / "m.bin"
    f.write_bytes(b"model bytes")
    sha = hashlib.sha256(b"model bytes").hexdigest()
    reg = tmp_path / "weights.toml"
    reg.write_text(f'[m]\nwhat = "test model"\nfile = "m.bin"\nsha256 = "{sha}"\nsize = 11\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    assert invoke("weights", "import", "m", f).exit_code == 0
    ok = invoke("weights", "verify", "m")
    assert ok.exit_code == 0 and "m: ok" in ok.stderr
    from stylecli.registry import weights

    weights.local_copy(weights.get_entry("m")).write_bytes(b"tampered!!!")
    bad = invoke("weights", "verify", "m")
    assert bad.exit_code == 1 and f"expected {sha}" in bad.stderr
    table = invoke("weights", "list")
    assert table.exit_code == 0 and "test model" in table.stdout and "yes" in table.stdout
    directions = invoke("directions")  # 'age' is not in this registry: listed as such, no crash
    assert directions.exit_code == 0 and "sefa:K" in directions.stdout and "registry" in directions.stdout
