"""Issue 24, point 7 (small1's items): what a first hour with stylecli tripped over, each fixed and held here."""

from __future__ import annotations

import ast
import io
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from conftest import shifted_faces
from helpers import REPO, invoke, records
from PIL import Image

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# 1. "raise it with --max-pixels": every command that reads photos takes it -------------------------------------

@pytest.mark.parametrize("command", ["mix", "directions preview", "directions learn"])
def test_commands_that_read_photos_take_max_pixels(tmp_path, tiny_checkpoint, face_png, command):
    """The limit message names --max-pixels: each command that can say it has the option, and it is applied."""
    assert "--max-pixels" in invoke(*command.split(), "-h").stdout
    flipped = tmp_path / "flipped.png"
    Image.open(face_png).transpose(Image.FLIP_LEFT_RIGHT).save(flipped)
    args = {
        "mix": ("mix", face_png, face_png, "-o", tmp_path / "out"),
        "directions preview": ("directions", "preview", face_png, "--names", "sefa:0", "-o", tmp_path / "s.png"),
        "directions learn": ("directions", "learn", "--positive", shifted_faces(tmp_path / "p", face_png, 5, 7, "p"),
                             "--negative", shifted_faces(tmp_path / "n", flipped, 5, 7, "n"),
                             "-o", tmp_path / "d.npy"),
    }[command]
    result = invoke(*args, "--no-align", "--checkpoint", tiny_checkpoint, "--max-pixels", 500)
    assert result.exit_code != 0 and "over the limit of 500 pixels" in result.stderr, result.stderr
    assert "raise it with --max-pixels" in result.stderr


# 2 and 3. --no-tune renders of a tuned latent get their own names; the tuned file is 0644 as the others ----------

def _tuned_latent(tmp_path: Path, tiny_checkpoint: Path, face_png: Path) -> Path:
    """face.npy with tuned generator weights beside it (written as `invert --tune` writes them)."""
    from stylecli.photo_weights import write_photo_weights
    from stylecli.pipeline.editor import FaceEditor

    out = tmp_path / "inv"
    assert invoke("invert", face_png, "--no-align", "--latent-only", "--checkpoint", tiny_checkpoint,
                  "-o", out).exit_code == 0
    latent = out / "face.npy"
    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    key = "to_rgb1.conv.weight"
    weights = {key: editor.generator.state_dict()[key] * 0.5}
    write_photo_weights(editor, latent, np.load(latent), weights, {"max_steps": "1"},
                        editor.generator_fingerprint, overwrite=False)
    return latent


def test_no_tune_renders_of_a_tuned_latent_have_names_of_their_own(tmp_path, tiny_checkpoint, face_png):
    latent = _tuned_latent(tmp_path, tiny_checkpoint, face_png)
    tuned_file = latent.with_name("face.tuned.safetensors")
    assert tuned_file.is_file()
    # 0644 (the umask's mode) like every other output, not mkstemp's or safetensors' private 0600
    assert stat.S_IMODE(tuned_file.stat().st_mode) == stat.S_IMODE(latent.stat().st_mode)

    args = ("edit", latent, "-d", "sefa:0", "-s", "2", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "e", "--json")
    tuned = invoke(*args)
    assert tuned.exit_code == 0, tuned.stderr
    tuned_png = Path(records(tuned)[0]["outputs"]["sefa-0+2"])
    assert tuned_png.name == "face_sefa-0+2.png"
    before = tuned_png.read_bytes()
    plain = invoke(*args, "--no-tune")  # into the same folder: neither "exists" nor the tuned render overwritten
    assert plain.exit_code == 0, plain.stderr
    plain_png = Path(records(plain)[0]["outputs"]["sefa-0+2"])
    assert plain_png.name == "face_untuned_sefa-0+2.png"
    assert tuned_png.read_bytes() == before
    diff = np.abs(np.asarray(Image.open(plain_png)).astype(int) - np.asarray(Image.open(tuned_png)).astype(int))
    assert diff.max() > 0  # other pixels, so another name
    skipped = invoke(*args, "--no-tune", "--skip-existing")  # the expected names are the written ones
    assert records(skipped)[0]["status"] == "skipped"


def test_atomic_outputs_get_the_usual_mode_whoever_writes_them(tmp_path):
    """A writer that replaces the temporary file (safetensors' save_file renames its own 0600 file over it)."""
    from stylecli.files.atomic import atomic_path

    with atomic_path(tmp_path / "out.bin") as tmp:
        private = tmp.with_name("private")
        private.write_bytes(b"x")
        os.chmod(private, 0o600)
        os.replace(private, tmp)
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")  # the mode a plain new file gets here (0666 less the umask)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# 4. weights list never cuts a URL --------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", [200, 120, 80])
def test_weights_list_on_a_terminal_shows_every_url_whole(monkeypatch, columns):
    from stylecli.cli.weights_cmd import weights_list
    from stylecli.registry import weights

    monkeypatch.setenv("COLUMNS", str(columns))
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    weights_list(as_json=False)
    lines = ANSI.sub("", screen.getvalue()).splitlines()
    assert lines
    urls = [word.rstrip(",") for e in weights.load_registry().values() for word in e.describe_sources().split()
            if "://" in word]
    assert len(urls) > 10
    for url in urls:
        assert any(url in line for line in lines), f"{url} is cut at {columns} columns"
    if columns == 200:  # the table itself, within the width (narrower: one block per entry, each value whole)
        assert any("┃" in line for line in lines) and all(len(line) <= columns for line in lines)


# 5. --steps / --w-encoder that the registry model does not take: refused before any download ---------------------

@pytest.fixture
def no_download(monkeypatch):
    from stylecli.registry import weights

    def download(name, *args, **kwargs):
        raise AssertionError(f"downloaded {name}")

    monkeypatch.setattr(weights, "resolve", download)


@pytest.mark.parametrize("command", [("invert",), ("edit", "-d", "sefa:0"), ("evaluate",)])
def test_an_option_the_registry_model_does_not_take_is_refused_before_any_download(tmp_path, face_png, no_download,
                                                                                   command):
    result = invoke(*command, face_png, "--no-align" if command[0] != "evaluate" else "--quiet",
                    "--model", "e4e_ffhq", "--steps", "3", *(() if command[0] == "evaluate" else ("-o", tmp_path)))
    assert result.exit_code == 2, result.output
    assert "--steps" in result.stderr and "ReStyle" in result.stderr and "downloaded" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_registry_says_each_models_encoder_kind(tmp_path, face_png, no_download):
    from stylecli.encoders.kinds import KINDS
    from stylecli.registry import weights

    checkpoints = [e for e in weights.load_registry().values() if e.kind == "checkpoint"]
    assert checkpoints and all(e.encoder in {k.name for k in KINDS} for e in checkpoints)
    wrong = invoke("invert", face_png, "--no-align", "--model", "restyle_e4e_ffhq", "--w-encoder", face_png,
                   "-o", tmp_path)
    assert wrong.exit_code == 2 and "--w-encoder is for HyperStyle models" in wrong.stderr, wrong.stderr
    taken = invoke("invert", face_png, "--no-align", "--model", "restyle_e4e_ffhq", "--steps", "3", "-o", tmp_path)
    assert "downloaded restyle_e4e_ffhq" in taken.output  # a model that takes --steps goes on to its download


# 6. --checkpoint and --model together ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("invert", "IN"), ("edit", "IN", "-d", "sefa:0"), ("mix", "IN", "IN"), ("directions", "preview", "IN"),
    ("directions", "learn", "--positive", "IN", "--negative", "IN", "-o", "d.npy"), ("directions",),
])
@pytest.mark.parametrize("model_first", [True, False])
def test_checkpoint_and_model_together_are_a_usage_error(tmp_path, tiny_checkpoint, face_png, command, model_first):
    pair = [("--model", "e4e_ffhq"), ("--checkpoint", tiny_checkpoint)]
    given = [a for option in (pair if model_first else pair[::-1]) for a in option]
    args = [face_png if a == "IN" else a for a in command]
    result = invoke(*args, *given)
    assert result.exit_code == 2, result.output
    assert f"--checkpoint {tiny_checkpoint} and --model e4e_ffhq: give one, not both" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # (--checkpoint with the default --model: every other test)


# 7. command summaries whole in --help ----------------------------------------------------------------------------

@pytest.mark.parametrize("group", [(), ("weights",), ("cache",), ("directions",)])
def test_help_lists_each_commands_whole_first_sentence(group):
    import typer

    from stylecli.cli import app
    from stylecli.cli.help_text import first_sentence

    command = typer.main.get_command(app)
    for name in group:
        command = command.commands[name]
    listed = invoke(*group, "--help").stdout.split("Commands:", 1)[1]
    assert "..." not in listed
    flat = " ".join(listed.split())
    assert len(command.commands) >= 2
    for name, sub in command.commands.items():
        summary = first_sentence(sub.help)
        assert summary.endswith((".", ")")) and len(summary) > 20, summary
        assert f"{name} {summary}" in flat, f"{name}: {summary!r} not whole in {listed}"


def test_first_sentence_stops_at_the_end_of_the_first_sentence():
    from stylecli.cli.help_text import first_sentence

    assert first_sentence("Do A, then\n    B. Then C.\n\n    More.") == "Do A, then B."
    assert first_sentence("One 0.5 step (e.g. x).\n\nRest") == "One 0.5 step (e.g. x)."


# 8. pixel counts read plainly ------------------------------------------------------------------------------------

def test_pixel_counts_in_messages_never_use_exponents(face_png):
    from stylecli.errors import InputError
    from stylecli.files.images import _megapixels, read_image

    assert _megapixels(10**10) == "10000 megapixels"
    assert _megapixels(100_000_000) == "100 megapixels"
    assert _megapixels(65_536) == "0.0655 megapixels"
    assert _megapixels(12) == "12 pixels" and _megapixels(1) == "1 pixel"
    for n in [int(10 ** (k / 4)) for k in range(0, 60)]:
        said = _megapixels(n)
        assert "e+" not in said and "e-" not in said and not said.startswith("0 "), (n, said)
    with pytest.raises(InputError, match=r"256x256 is 0\.0655 megapixels, over the limit of 12 pixels"):
        read_image(face_png, max_pixels=12)


# 9. counts with their nouns --------------------------------------------------------------------------------------

def test_counts_of_one_are_singular(tmp_path, tiny_checkpoint, face_png, capsys):
    from stylecli.cli.evaluate_cmd import _print_table
    from stylecli.errors import counted
    from stylecli.tuning.progress import _summary
    from stylecli.tuning.pti import TuningResult

    assert (counted(1, "image"), counted(0, "image"), counted(2, "entry", "entries")) == ("1 image", "0 images",
                                                                                        "2 entries")
    document = {"images": 1, "results": [{"checkpoint": "a.pt", "metrics": {},
                                          "speed": {"encode_s_per_image": 0.1, "synthesize_s_per_image": 0.1}}]}
    _print_table(document, [], stderr=False)
    assert capsys.readouterr().out.startswith("# 1 image\n")
    fields = TuningResult.__dataclass_fields__
    one = TuningResult(**{k: 0.0 for k in fields} | {"steps": 1, "stopped_early": False})
    assert "tuned in 1 step (" in _summary("face", one)
    sheet = invoke("directions", "preview", face_png, "--no-align", "--names", "sefa:0", "--checkpoint",
                   tiny_checkpoint, "-o", tmp_path / "s.png")
    assert sheet.exit_code == 0 and "(1 direction)" in sheet.stderr, sheet.stderr
    one_input = next(p for p in (face_png,))
    from stylecli.batch.inputs import take_shard

    other = next(f"{k}/2" for k in (1, 2) if not take_shard([one_input], k, 2))
    idle = invoke("align", one_input, "--shard", other, "-o", tmp_path / "a")
    assert idle.exit_code == 0 and "1 inputs" not in idle.stderr and "the 1 input falls" in idle.stderr


# 10. every third-party import is a declared dependency -----------------------------------------------------------

def test_every_third_party_package_the_code_imports_is_declared():
    """Each top-level module imported anywhere in stylecli/ is the standard library's, stylecli's, or comes from a
    distribution pyproject.toml declares (in `dependencies` or an extra), with a lower bound."""
    from importlib.metadata import distributions, packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]:
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        declared[re.sub(r"[-_.]+", "-", name).lower()] = spec
    imported = set()
    for path in (REPO / "stylecli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = sorted(m for m in imported if m not in sys.stdlib_module_names and m not in ("stylecli", "tomli"))
    owners = packages_distributions()

    def owner(module: str) -> list[str]:  # top_level.txt, else the files installed (dlib-bin names only its .so)
        return owners.get(module) or [d.metadata["Name"] for d in distributions()
                                      if any(f.parts[0] == module for f in d.files or [])] or [module]

    assert "torchvision" in third_party
    for module in third_party:
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owner(module)}
        found = [declared[d] for d in dists if d in declared]
        assert found, f"stylecli imports {module} (from {sorted(dists)}), which pyproject.toml does not declare"
        assert any(">=" in spec for spec in found), f"{module}: declared without a lower bound: {found}"
