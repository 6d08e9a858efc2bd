"""The one rule for exit codes: 0 all done; 1 some inputs failed by their own fault; 2 usage or set-up that no
input can fix (an unknown name, a missing package, a model file that fails its hash at use), found before the
first input, or ending the run where it shows only midway; 3 a download that failed; 130 interrupted."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, records, write_registry

from stylecli.errors import SetupError


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("stylecli: error:")]


def said_once(result, code: int, *words: str) -> str:
    """The run ended with exit `code` and one error line holding `words`, no traceback, no record on stdout."""
    lines = error_lines(result)
    assert result.exit_code == code and len(lines) == 1, (result.exit_code, result.stderr)
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == "", result.stdout
    return lines[0]


@pytest.fixture
def dead_url() -> str:
    """An http address nothing listens on: a download from it fails at once (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def entry(name: str, source: str, kind: str = "checkpoint", sha: str | None = "0" * 64, file: str = "m.pt") -> str:
    digest = f'sha256 = "{sha}"\n' if sha else ""
    return (f'[{name}]\nwhat = "test"\nkind = "{kind}"\nfile = "{file}"\n{digest}license = "test"\n'
            f"sources = [{source}]\n")


@pytest.fixture
def model_loads(monkeypatch) -> list:
    """Every FaceEditor the commands make (none must be made when a usage or set-up error comes first)."""
    from stylecli.cli import common

    made = []
    real = common.make_editor
    monkeypatch.setattr(common, "make_editor", lambda *a, **k: made.append(a) or real(*a, **k))
    from stylecli.cli import directions_cmd, photos

    monkeypatch.setattr(photos, "make_editor", common.make_editor)
    monkeypatch.setattr(directions_cmd, "make_editor", common.make_editor)
    return made


def test_a_model_that_cannot_be_downloaded_is_exit_3_said_once(tmp_path, monkeypatch, face_png, dead_url):
    write_registry(tmp_path, monkeypatch, entry("m", f'{{ url = "{dead_url}/m.pt" }}'))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = invoke("invert", face_png, face_png, "--no-align", "--model", "m", "-o", tmp_path / "o", "--json")
    said_once(result, 3, "m (m.pt)", "could not be downloaded", "stylecli weights import m PATH")
    assert not (tmp_path / "o").exists()
    pull = invoke("weights", "pull", "m")
    assert pull.exit_code == 3 and len(error_lines(pull)) == 1, pull.stderr


def test_a_manual_only_model_not_imported_is_exit_2(tmp_path, monkeypatch, face_png):
    write_registry(tmp_path, monkeypatch, entry("m", '{ manual = "https://example.org/m" }'))
    result = invoke("invert", face_png, "--no-align", "--model", "m", "-o", tmp_path / "o", "--json")
    said_once(result, 2, "cannot be downloaded automatically", "stylecli weights import m PATH")
    assert invoke("weights", "pull", "m").exit_code == 2


def test_a_direction_that_cannot_be_downloaded_is_exit_3_before_any_input(tmp_path, monkeypatch, face_png,
                                                                         tiny_checkpoint, dead_url):
    write_registry(tmp_path, monkeypatch, entry("age", f'{{ url = "{dead_url}/age.npy" }}', "direction",
                                                file="age.npy"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = invoke("edit", face_png, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-d", "age",
                    "-o", tmp_path / "o", "--json")
    said_once(result, 3, "age (age.npy)", "could not be downloaded")
    assert not (tmp_path / "o").exists()


def test_an_arcface_file_that_cannot_be_downloaded_ends_evaluate_before_any_face(tmp_path, monkeypatch, face_png,
                                                                                 tiny_checkpoint, dead_url):
    from stylecli.evaluation import driver

    write_registry(tmp_path, monkeypatch, entry("arcface_ir_se50", f'{{ url = "{dead_url}/a.pth" }}', "backbone",
                                                file="a.pth"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    loaded = []
    monkeypatch.setattr(driver, "load_faces", lambda *a, **k: loaded.append(a) or ([], []))
    result = invoke("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--metrics", "id", "--json")
    said_once(result, 3, "arcface_ir_se50 (a.pth)", "could not be downloaded")
    assert loaded == []


def test_an_alexnet_that_cannot_be_downloaded_ends_tune_before_any_input(tmp_path, monkeypatch, face_png,
                                                                         tiny_checkpoint):
    from stylecli.registry import networks, weights

    def unreachable(device, path=None):
        raise weights.DownloadError("lpips_alexnet (alexnet.pth) is not available here and could not be downloaded")

    monkeypatch.setattr(networks, "lpips_model", unreachable)
    result = invoke("invert", face_png, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--tune",
                    "-o", tmp_path / "o", "--json")
    said_once(result, 3, "alexnet")
    assert not (tmp_path / "o").exists()


def test_a_missing_lpips_ends_tune_before_any_input(tmp_path, monkeypatch, face_png, tiny_checkpoint):
    monkeypatch.setitem(sys.modules, "lpips", None)
    result = invoke("invert", face_png, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--tune",
                    "-o", tmp_path / "o", "--json")
    said_once(result, 2, "LPIPS needs the lpips package", "pip install 'stylecli[eval]'")
    assert not (tmp_path / "o").exists()


def test_a_tampered_imported_model_is_exit_2_at_use_and_1_for_verify(tmp_path, monkeypatch, face_png,
                                                                      tiny_checkpoint):
    from stylecli.registry import weights

    write_registry(tmp_path, monkeypatch, entry("m", '{ manual = "https://example.org/m" }', sha=None))
    assert invoke("weights", "import", "m", tiny_checkpoint).exit_code == 0
    copy = weights.local_copy(weights.get_entry("m"))
    copy.write_bytes(copy.read_bytes() + b"!")  # changed after its import
    result = invoke("invert", face_png, face_png, "--no-align", "--model", "m", "-o", tmp_path / "o", "--json")
    said_once(result, 2, "changed since it was imported", "stylecli weights import m PATH")
    verify = invoke("weights", "verify", "m")  # the file fails its own check: exit 1
    assert verify.exit_code == 1 and "expected" in verify.stderr, verify.stderr


def test_a_hash_mismatch_at_use_is_exit_2(tmp_path, monkeypatch, face_png):
    from stylecli.registry import weights

    write_registry(tmp_path, monkeypatch, entry("m", '{ manual = "https://example.org/m" }'))
    copy = weights.local_copy(weights.get_entry("m"))
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not the registry's file")
    result = invoke("invert", face_png, "--no-align", "--model", "m", "-o", tmp_path / "o", "--json")
    said_once(result, 2, "does not match", "stylecli weights pull m")


def test_weights_import_of_a_wrong_file_is_exit_1(tmp_path, monkeypatch):
    write_registry(tmp_path, monkeypatch, entry("m", '{ manual = "https://example.org/m" }'))
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"something else")
    result = invoke("weights", "import", "m", wrong)
    assert result.exit_code == 1 and "nothing was installed" in result.stderr, result.stderr


def test_a_missing_dlib_is_exit_2_before_any_photo(tmp_path, monkeypatch, face_png, tiny_checkpoint):
    monkeypatch.setitem(sys.modules, "dlib", None)
    for command in (("align",), ("invert", "--checkpoint", tiny_checkpoint)):
        result = invoke(*command, face_png, face_png, "-o", tmp_path / "o", "--json")
        said_once(result, 2, "face alignment needs dlib", "pip install 'stylecli[faces]'", "--no-align")
    assert not (tmp_path / "o").exists()
    ok = invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o")
    assert ok.exit_code == 0, ok.stderr  # crops need no dlib
    ok = invoke("edit", tmp_path / "o" / "face.npy", "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o",
                tmp_path / "e")
    assert ok.exit_code == 0, ok.stderr  # nor do saved latents


def test_a_missing_dlib_ends_learn_and_evaluate_in_one_line(tmp_path, monkeypatch, face_png, tiny_checkpoint):
    """Commands that align inside their own loop (learn's examples, evaluate's faces) stop at the first set-up
    error instead of failing every photo."""
    monkeypatch.setitem(sys.modules, "dlib", None)
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(face_png))
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    photos = [tmp_path / ("pos" if i < 5 else "neg") / f"p{i}.png" for i in range(10)]
    for i, p in enumerate(photos):  # ten different photos (the same one on both sides is refused)
        Image.fromarray(np.roll(pixels, 3 * i, axis=1)).save(p)
    result = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg", "-o",
                    tmp_path / "d.npy", "--checkpoint", tiny_checkpoint)
    said_once(result, 2, "face alignment needs dlib")
    result = invoke("evaluate", *photos[:3], "--align", "--checkpoint", tiny_checkpoint, "--metrics", "l2", "--json")
    said_once(result, 2, "face alignment needs dlib")


def test_preview_checks_the_named_directions_before_the_model_loads(tmp_path, model_loads, preview_args):
    import numpy as np

    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((1, 32), np.nan, np.float32))
    args = [a if a != "sefa:0" else f"{nan},sefa:0" for a in preview_args]
    said_once(invoke(*args, "-o", tmp_path / "s.png"), 2, "nan.npy", "NaN")
    assert model_loads == []


def test_seamless_without_opencv_is_exit_2_at_option_time(tmp_path, monkeypatch, face_png, tiny_checkpoint,
                                                          model_loads):
    monkeypatch.setitem(sys.modules, "cv2", None)
    result = invoke("edit", face_png, "--checkpoint", tiny_checkpoint, "-d", "sefa:0", "--paste-back",
                    "--blend", "seamless", "-o", tmp_path / "o", "--json")
    said_once(result, 2, "--blend seamless needs OpenCV", "pip install 'stylecli[faces]'")
    assert model_loads == [] and not (tmp_path / "o").exists()


def test_a_missing_scikit_learn_is_exit_2_before_any_example_is_inverted(tmp_path, monkeypatch, model_loads):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    rng = np.random.default_rng(0)
    for side in ("pos", "neg"):
        (tmp_path / side).mkdir()
        for i in range(5):
            np.save(tmp_path / side / f"{i}.npy", rng.standard_normal((8, 32)).astype(np.float32))
    result = invoke("directions", "learn", "--positive", tmp_path / "pos", "--negative", tmp_path / "neg",
                    "-o", tmp_path / "d.npy", "--checkpoint", tmp_path / "any.pt")
    said_once(result, 2, "learning directions needs scikit-learn", "pip install 'stylecli[learn]'")
    assert model_loads == [] and not (tmp_path / "d.npy").exists()


def test_a_set_up_error_midway_ends_the_run_and_removes_the_partial_outputs(tmp_path, monkeypatch, face_png,
                                                                            tiny_checkpoint):
    """A direction file or a package that only fails when first used, at the second input: the first is done,
    the second leaves nothing, the run ends in one line, exit 2 (not a failed record per input, exit 1)."""
    import shutil

    from stylecli.batch import jobs

    second = Path(shutil.copyfile(face_png, tmp_path / "second.png"))
    third = Path(shutil.copyfile(face_png, tmp_path / "third.png"))
    real = jobs.InvertJob.write
    calls = []

    def write(self, task, result, overwrite):
        calls.append(task.source)
        if task.source == second:  # one file of the input is written, then the set-up error
            np.save(task.outputs["latent"], np.zeros(1))
            raise SetupError("direction.npy: only fails when first used (fix it)")
        return real(self, task, result, overwrite)

    monkeypatch.setattr(jobs.InvertJob, "write", write)
    out = tmp_path / "o"
    result = invoke("invert", face_png, second, third, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out,
                    "--json", "--batch-size", "1")
    lines = error_lines(result)
    assert result.exit_code == 2 and lines == ["stylecli: error: direction.npy: only fails when first used (fix it)"]
    assert [r["input"] for r in records(result)] == [str(face_png)] and records(result)[0]["ok"]
    assert sorted(p.name for p in out.iterdir()) == ["face.npy", "face_inversion.png"]  # second.npy removed
    assert calls == [face_png, second]  # the third input never ran


def test_an_input_that_fails_by_itself_is_still_exit_1(tmp_path, face_png, tiny_checkpoint):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    result = invoke("invert", broken, face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o",
                    "--json")
    assert result.exit_code == 1 and [r["ok"] for r in records(result)] == [False, True]


@pytest.fixture
def preview_args(tmp_path, face_png, tiny_checkpoint) -> list:
    return ["directions", "preview", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--names", "sefa:0"]


def test_preview_on_a_full_disk_is_one_line_naming_the_sheet(tmp_path, monkeypatch, preview_args):
    from PIL import Image

    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    sheet = tmp_path / "sheet.png"
    result = invoke(*preview_args, "-o", sheet)
    line = error_lines(result)
    assert result.exit_code == 1 and len(line) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(sheet) in line[0] and "No space left on device" in line[0] and "free some space" in line[0], line
    assert not sheet.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".sheet")]


def test_preview_into_an_unwritable_place_is_one_line(tmp_path, preview_args):
    if not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    result = invoke(*preview_args, "-o", "/proc/x.png")
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "/proc/x.png" in lines[0] and ("choose another" in lines[0] or "permissions" in lines[0]), lines
