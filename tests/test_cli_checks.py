"""What the commands find before any model is resolved (direction specs, --layers, mix's destination), mix with
per-photo generator weights, and the one form of an error line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import invoke
from PIL import Image


@pytest.fixture
def no_model(monkeypatch):
    """No model may be resolved (nothing is cached here: resolving one would mean a download)."""
    from stylecli.registry import weights

    resolved = []

    def refuse(name, *args, **kwargs):
        resolved.append(name)
        raise weights.WeightsError(f"{name}: could not be downloaded (offline)")

    monkeypatch.setattr(weights, "resolve", refuse)
    return resolved


@pytest.mark.parametrize("args, message", [
    (("-d", "nonsense"), "unknown direction 'nonsense'"),
    (("-d", "smilee"), "did you mean smile"),
    (("-d", "ganspace:smil"), "did you mean ganspace:smile"),
    (("-d", "sefa:x"), "sefa:K"),
    (("-d", "ganspace:5"), "needs --layers"),
    (("-d", "sefa:0", "--layers", "0-x"), "--layers '0-x'"),
    (("-d", "NOPE/dir.npy"), "no such direction file"),
    (("-d", "age", "--model", "e4e_cars"), "a direction for ffhq models, and this model is a cars model"),
    (("-d", "ganspace:smile", "--model", "e4e_horse"), "no GANSpace PCA file is known for horse models"),
    (("-d", "sefa:0", "--model", "nosuch"), "--model nosuch: unknown weights name"),
])
def test_direction_errors_come_before_any_model_is_resolved(tmp_path, face_png, no_model, args, message):
    args = tuple(str(tmp_path / a[5:]) if a.startswith("NOPE/") else a for a in args)
    result = invoke("edit", face_png, face_png, "-o", tmp_path / "o", "--json", *args)
    lines = [line for line in result.stderr.splitlines() if line.startswith("stylecli: error:")]
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert no_model == [] and result.stdout == "" and not (tmp_path / "o").exists()


@pytest.fixture
def codes(tmp_path) -> tuple[Path, Path]:
    for name, seed in (("a", 1), ("b", 2)):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(seed).standard_normal((18, 32)).astype(np.float32))
    return tmp_path / "a.npy", tmp_path / "b.npy"


def test_mix_finds_usage_errors_before_the_model_loads(tmp_path, codes, no_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a+b_layers8-17.png").write_bytes(b"taken")  # the default layers of the registry's 18-style model
    (out / "a+b_layers0-3.png").write_bytes(b"taken")
    (tmp_path / "m.png").write_bytes(b"taken")
    for extra, message in [((), "exists"), (("--layers", "0-3"), "exists"), (("--layers", "8-x"), "--layers '8-x'")]:
        result = invoke("mix", *codes, "-o", out, *extra)
        assert result.exit_code == 2 and message in result.stderr and result.exception.__class__ is SystemExit
    result = invoke("mix", *codes, "-o", tmp_path / "m.png", "--checkpoint", tmp_path / "any.pt")
    assert result.exit_code == 2 and "m.png: exists" in result.stderr
    assert no_model == [] and (out / "a+b_layers0-3.png").read_bytes() == b"taken"


def test_mix_keeps_the_first_photos_generator_weights(tmp_path, tiny_checkpoint, face_png, monkeypatch):
    from helpers import Tuned

    from stylecli.cli import photos
    from stylecli.editing.mixing import mix
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.pipeline.sources import source_code

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    editor.encoder = Tuned(editor)
    other = tmp_path / "other.png"
    Image.fromarray(np.roll(np.asarray(Image.open(face_png)), 40, axis=1)).save(other)
    first, second = source_code(editor, face_png, align=False), source_code(editor, other, align=False)
    assert first.codes.shape == (1, 8, 32) and len(first.weights) == 1 and first.weights[0] is not None
    monkeypatch.setattr(photos, "make_editor", lambda *args, **kwargs: editor)
    result = invoke("mix", face_png, other, "--no-align", "--checkpoint", tiny_checkpoint, "--layers", "4-7", "-o",
                    tmp_path / "m.png")
    assert result.exit_code == 0, result.stderr
    mixed = mix(first.codes, second.codes, (4, 5, 6, 7))
    written = np.asarray(Image.open(tmp_path / "m.png"))
    assert np.array_equal(written, editor.synthesize(mixed, first.weights)[0])
    assert not np.array_equal(written, editor.synthesize(mixed)[0])


def test_every_error_line_has_one_form():
    """Error, note and warning lines are formatted in stylecli/errors.py alone (the progress reporter, weights
    and evaluate commands included)."""
    import stylecli
    from stylecli.errors import error_line, note_line, warning_line

    assert error_line("x.png: no such file") == "stylecli: error: x.png: no such file"
    assert (note_line("a"), warning_line("b")) == ("stylecli: note: a", "stylecli: warning: b")
    root = Path(stylecli.__file__).parent
    for path in root.rglob("*.py"):
        if path != root / "errors.py":
            for form in ("stylecli: error", "stylecli: note", "stylecli: warning"):
                assert form not in path.read_text(), (path, form)
    result = invoke("weights", "pull", "nosuch")
    assert result.exit_code == 2 and result.stderr.startswith(error_line("unknown weights name 'nosuch'"))


def test_directions_with_an_unknown_model_is_a_usage_error():
    result = invoke("directions", "--model", "nosuch")
    assert result.exit_code == 2 and "--model nosuch" in result.stderr
    assert invoke("directions", "--model", "cars").exit_code == 0  # a short domain name
    assert invoke("directions", "--model", "e4e_ffhq").exit_code == 0
