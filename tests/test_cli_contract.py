"""The CLI contract: errors always shown, names never cut, option-aware output names, usage errors exit 2
said once, outputs checked before models load, contradictions refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, records
from PIL import Image


def clean(result) -> bool:
    """Ended by the CLI itself (an exit code), not by an exception it did not expect (which the CLI says in one
    line too, as `unexpected TYPE: ...`, pointing at STYLECLI_DEBUG)."""
    return (result.exception is None or isinstance(result.exception, SystemExit)) \
        and "STYLECLI_DEBUG=1 shows the traceback" not in result.stderr


def test_an_unexpected_error_is_one_line_and_stylecli_debug_shows_its_traceback(monkeypatch):
    from stylecli.cli import photos

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(photos, "expand_paths", broken)
    result = invoke("invert", "x.png")
    assert result.exit_code == 1 and not clean(result)
    assert result.stderr == "stylecli: error: unexpected RuntimeError: boom (STYLECLI_DEBUG=1 shows the traceback)\n"
    monkeypatch.setenv("STYLECLI_DEBUG", "1")
    debug = invoke("invert", "x.png")
    assert debug.exit_code == 1 and debug.stderr.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("boom")' in debug.stderr
    assert debug.stderr.endswith("\nstylecli: error: unexpected RuntimeError: boom\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(photos, "expand_paths", interrupted)
    assert invoke("invert", "x.png").exit_code == 130  # Ctrl-C


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
    (("-d", "sefa:0", "--keep", "sefa:99"), "--keep sefa:99: only"),
    (("-d", "sefa:0", "--keep", "agee"), "--keep: unknown direction 'agee'"),
    (("-d", "sefa:0", "--max-pixels", "0"), "--max-pixels"),
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


def test_layers_of_a_registry_model_are_checked_before_it_is_downloaded(tmp_path, face_png, monkeypatch):
    from stylecli.registry import weights

    monkeypatch.setattr(weights, "resolve", lambda *a, **k: pytest.fail("a model was resolved"))
    result = invoke("edit", face_png, "-d", "age", "--layers", "0-18", "--model", "e4e_ffhq", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "layers go from 0 to 17" in result.stderr


@pytest.mark.parametrize("args", [
    ("-d", "sefa:0", "--sweep", "-1:1:3", "-s", "2"),
    ("-d", "sefa:0", "--overwrite", "--skip-existing"),
    ("-d", "sefa:0", "--faces", "all"),
    ("-d", "sefa:0", "--blend", "seamless"),
    ("-d", "sefa:0", "--paste-back"),
])
def test_contradicting_options_are_refused(tmp_path, tiny_checkpoint, face_png, args):
    result = invoke("edit", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", *args)
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    assert result.stderr.startswith("stylecli: error: ") and result.stderr.count("\n") == 1  # one line, no usage


def test_parser_errors_are_one_line_too():
    for args, said in ((("edit", "x.png", "--bogus"), "No such option: --bogus"),
                       (("edit", "x.png"), "Missing option '--direction'"), (("nosuch",), "No such command")):
        result = invoke(*args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and said in result.stderr
        assert result.stderr.startswith("stylecli: error: ") and "-h`)" in result.stderr


def test_output_files_of_options_are_checked_before_any_work(tmp_path, tiny_checkpoint, face_png):
    (tmp_path / "file").write_text("x")
    for args in (("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--metrics", "l2", "--csv",
                  tmp_path / "file" / "r.csv"),
                 ("directions", "preview", face_png, "--checkpoint", tiny_checkpoint, "--names", "sefa:0", "-o",
                  tmp_path / "file" / "s.png"),
                 ("directions", "learn", *(["--positive", face_png] * 5), *(["--negative", face_png] * 5),
                  "--checkpoint", tiny_checkpoint, "-o", tmp_path / "file" / "g.npy")):
        result = invoke(*args)
        assert result.exit_code == 2 and "is a file, not a folder" in result.stderr, (args, result.stderr)
        assert clean(result) and result.stderr.count("\n") == 1


def test_output_folder_is_checked_before_the_model_loads(tmp_path, face_png, monkeypatch):
    from stylecli.registry import weights

    monkeypatch.setattr(weights, "resolve", lambda *a, **k: pytest.fail("a model was resolved"))
    (tmp_path / "file").write_text("x")
    result = invoke("invert", face_png, "--no-align", "-o", tmp_path / "file" / "sub")
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr
    import os

    real_access = os.access  # tests may run as root, for whom a mode-555 folder is still writable
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    locked = invoke("edit", face_png, "-d", "age", "-o", tmp_path / "new" / "sub")
    assert locked.exit_code == 2 and locked.stderr.count("\n") == 1
    assert f"{tmp_path} is not writable (choose another folder with -o)" in locked.stderr


def test_a_sweep_is_capped_before_any_work(tmp_path, face_png, monkeypatch):
    from stylecli.registry import weights

    monkeypatch.setattr(weights, "resolve", lambda *a, **k: pytest.fail("a model was resolved"))
    result = invoke("edit", face_png, "-d", "age", "--sweep", "-4:4:1000", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "2 <= N <= 100" in result.stderr and not (tmp_path / "o").exists()


def test_a_far_from_square_image_without_alignment_is_warned_about(tmp_path, tiny_checkpoint, face_png):
    Image.open(face_png).resize((97, 220)).save(tmp_path / "tall.png")
    Image.open(face_png).resize((110, 100)).save(tmp_path / "wide.png")
    result = invoke("invert", tmp_path / "tall.png", tmp_path / "wide.png", "--no-align", "--checkpoint",
                    tiny_checkpoint, "-o", tmp_path / "o", "--json")
    tall, wide = records(result)
    assert result.exit_code == 0 and any(n.startswith("warning: not square (97x220)") for n in tall["notes"])
    assert "not square (110x100): resized to 256x256 without keeping the aspect ratio" in wide["notes"]
    assert result.stderr.count("warning:") == 1 and "tall.png: not square (97x220)" in result.stderr


def test_a_terminal_table_wraps_other_columns_but_never_the_name(monkeypatch):
    import io

    from stylecli.cli.common import print_rows

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "60")
    out = Terminal()
    monkeypatch.setattr("sys.stdout", out)
    rows = [{"name": "ganspace:eye_openness_of_a_long_name", "about": "word " * 30}]
    print_rows(rows, {"direction": lambda r: r["name"], "about": lambda r: r["about"]})
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert any("ganspace:eye_openness_of_a_long_name" in line for line in lines)
    assert max(map(len, lines)) <= 60 and sum("word" in line for line in lines) > 3  # wrapped, not cut
    assert "…" not in out.getvalue() and not any(re.search(r"\bwor\b|\bwo\b|\bw\b", line) for line in lines)
    monkeypatch.setenv("COLUMNS", "30")  # narrower than the name and the longest word: a block per row
    out.seek(0)
    out.truncate()
    rows.append({"name": "sefa:K", "about": "https://example.org/a/long/address/that/must/stay/whole"})
    print_rows(rows, {"direction": lambda r: r["name"], "about": lambda r: r["about"]})
    assert out.getvalue().splitlines() == ["ganspace:eye_openness_of_a_long_name", f"  about: {'word ' * 30}",
                                           "sefa:K", "  about: https://example.org/a/long/address/that/must/stay/whole"]


def test_mix_follows_the_output_contract(tmp_path, tiny_checkpoint):
    for name, seed in (("a", 1), ("b", 2)):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(seed).standard_normal((8, 32)).astype(np.float32))
    base = ("mix", tmp_path / "a.npy", tmp_path / "b.npy", "--checkpoint", tiny_checkpoint)
    result = invoke(*base, "-o", tmp_path / "new" / "dir")  # a folder, created; default layers fit 8 styles
    made = tmp_path / "new" / "dir" / "a+b_layers4-7.png"
    assert result.exit_code == 0 and made.is_file(), result.stderr
    assert invoke(*base, "-o", tmp_path / "new" / "dir").exit_code == 2  # exists: said, no traceback
    assert invoke(*base, "-o", tmp_path / "new" / "dir", "--overwrite").exit_code == 0
    quiet = invoke(*base, "-o", tmp_path / "m.jpg", "--layers", "0-1", "--json", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and Image.open(tmp_path / "m.jpg").format == "JPEG"
    assert records(quiet) == [{"input": str(tmp_path / "a.npy"), "ok": True, "status": "done", "error": None,
                               "outputs": {"image": str(tmp_path / "m.jpg")}, "notes": [],
                               "second": str(tmp_path / "b.npy"), "layers": [0, 1], "alpha": 1.0}]
    gif = invoke(*base, "-o", tmp_path / "m.gif")
    assert gif.exit_code == 2 and "mix writes .png, .jpg or .webp" in gif.stderr and not (tmp_path / "m.gif").exists()
    bad = invoke(*base, "--layers", "8-17", "-o", tmp_path)
    assert bad.exit_code == 2 and clean(bad)


def test_weights_import_without_a_published_hash_checks_the_architecture(tmp_path, tiny_checkpoint, monkeypatch):
    _horse_registry(tmp_path, monkeypatch)
    (tmp_path / "notes.txt").write_text("not a model")
    text = invoke("weights", "import", "e4e_horse", tmp_path / "notes.txt")
    assert text.exit_code == 1 and text.stderr.count("nothing was installed") == 1
    assert text.stderr.count("notes.txt") == 1 and "cannot be e4e_horse: not a PyTorch checkpoint" in text.stderr
    wrong = invoke("weights", "import", "e4e_horse", tiny_checkpoint)  # 8 style layers, not 14
    assert wrong.exit_code == 1 and "14" in wrong.stderr and wrong.stderr.count("nothing was installed") == 1
    horse = _horse(tmp_path, "e4e")
    ok = invoke("weights", "import", "e4e_horse", horse)
    assert ok.exit_code == 0 and "not verified against a published hash" in ok.stderr, ok.stderr
    assert invoke("weights", "import", "nosuch", horse).exit_code == 2


def _horse_registry(tmp_path, monkeypatch):
    reg = tmp_path / "weights.toml"
    reg.write_text('[e4e_horse]\nwhat = "t"\nkind = "checkpoint"\ndomain = "horse"\nfile = "h.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n'
                   '[psp_horse]\nwhat = "t"\nkind = "checkpoint"\ndomain = "horse"\nfile = "p.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))


def _horse(tmp_path, kind: str) -> Path:
    """A 256-px (14 style layers) checkpoint of `kind` trained on horses, tiny otherwise."""
    from conftest import randomize

    from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint

    config = ModelConfig(size=256, kind=kind, style_dim=32, widths=(16, 16, 32, 32),
                         channels={4: 16, 8: 16, 16: 16, 32: 8, 64: 8, 128: 8, 256: 8}, n_mlp=2)
    path = tmp_path / f"{kind}_horse.pt"
    save_checkpoint(randomize(config.build()), path, default_opts(config, dataset_type="horse_encode"))
    return path


def test_weights_import_refuses_a_psp_file_for_an_e4e_entry_and_back(tmp_path, monkeypatch):
    from stylecli.registry import weights

    _horse_registry(tmp_path, monkeypatch)
    e4e, psp = _horse(tmp_path, "e4e"), _horse(tmp_path, "psp")
    wrong = invoke("weights", "import", "e4e_horse", psp)
    assert wrong.exit_code == 1 and clean(wrong) and len(wrong.stderr.splitlines()) == 1, wrong.stderr
    assert "a pSp (GradualStyleEncoder) checkpoint" in wrong.stderr and "e4e_horse is an e4e" in wrong.stderr
    assert weights.locate(weights.get_entry("e4e_horse")) is None  # nothing installed
    back = invoke("weights", "import", "psp_horse", e4e)
    assert back.exit_code == 1 and "psp_horse is a pSp" in back.stderr and "nothing was installed" in back.stderr
    ok = invoke("weights", "import", "e4e_horse", e4e)
    assert ok.exit_code == 0 and "an e4e checkpoint of 256 px" in ok.stderr, ok.stderr
    assert invoke("weights", "import", "psp_horse", psp).exit_code == 0


def test_weights_verify_checks_the_hash_recorded_at_import(tmp_path, monkeypatch):
    import hashlib

    from stylecli.registry import weights

    _horse_registry(tmp_path, monkeypatch)
    horse = _horse(tmp_path, "e4e")
    sha = hashlib.sha256(horse.read_bytes()).hexdigest()
    imported = invoke("weights", "import", "e4e_horse", horse)
    assert imported.exit_code == 0 and f"sha256 {sha}" in imported.stderr
    ok = invoke("weights", "verify", "e4e_horse")
    assert ok.exit_code == 0 and "e4e_horse: ok" in ok.stderr and "since its import" in ok.stderr, ok.stderr
    assert "not checked" not in invoke("weights", "verify").stderr
    copy = weights.local_copy(weights.get_entry("e4e_horse"))
    assert weights.resolve("e4e_horse") == copy
    copy.write_bytes(copy.read_bytes()[:-1] + b"!")  # changed after the import
    bad = invoke("weights", "verify", "e4e_horse")
    assert bad.exit_code == 1 and f"expected {sha} (the sha256 recorded at its import)" in bad.stderr, bad.stderr
    with pytest.raises(weights.WeightsError, match="changed since it was imported"):
        weights.resolve("e4e_horse")
    assert invoke("weights", "import", "e4e_horse", horse).exit_code == 0  # a new import records it again
    assert invoke("weights", "verify", "e4e_horse").exit_code == 0


def test_weights_verify_refuses_an_unknown_name_before_any_hashing(monkeypatch):
    from stylecli.registry import weights

    hashed = []
    monkeypatch.setattr(weights, "sha256_file", lambda path, progress=None: hashed.append(path) or "0" * 64)
    monkeypatch.setattr(weights, "locate", lambda entry: Path(__file__))  # every entry present
    result = invoke("weights", "verify", "nosuch", "dlib_landmarks68")
    assert result.exit_code == 2 and clean(result) and hashed == []
    assert result.stderr.splitlines() == [result.stderr.strip()] and "unknown weights name 'nosuch'" in result.stderr


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
    from stylecli.evaluation import driver as evaluation

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
    assert invoke("cache", "clean", "--older-than", "30d", "--yes").exit_code == 0 and len(records(invoke(
        "cache", "list", "--json"))) == 1
    assert invoke("cache", "clean", "--yes").exit_code == 0 and records(invoke("cache", "list", "--json")) == []
    assert invoke("cache", "clean", "--older-than", "soon", "--yes").exit_code == 2
    evaluated = invoke("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--metrics", "l2")  # also evaluate
    assert evaluated.exit_code == 0 and "fast-loading copy" in evaluated.stderr
    invoke("cache", "clean", "--yes")
    quiet = invoke("directions", "preview", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--names",
                   "sefa:0", "-o", tmp_path / "s.png", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and len(records(invoke("cache", "list", "--json"))) == 1


def test_an_image_given_as_checkpoint_is_named_as_such(tmp_path, face_png):
    Image.open(face_png).save(tmp_path / "photo.jpg")
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tmp_path / "photo.jpg", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "not a checkpoint but a JPEG image" in result.stderr


def test_conversions_are_noted_and_an_empty_folder_is_named(tmp_path, face_png):
    from stylecli.files.images import read_image

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
    for name in ("photos.py", "directions_cmd.py", "evaluate_cmd.py", "weights_cmd.py", "cache_cmd.py", "common.py"):
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


def all_help_pages() -> dict[str, str]:
    import typer.main

    from stylecli.cli import app

    pages = {}

    def walk(command, path):
        pages[" ".join(path) or "stylecli"] = invoke(*path, "--help").stdout
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return pages


def test_every_option_and_argument_has_help_text():
    import typer.main

    from stylecli.cli import app

    missing = []

    def walk(command, path):
        missing.extend(f"{path} {p.name}" for p in command.params if not getattr(p, "help", None))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "stylecli")
    assert not missing


def test_help_placeholders_are_plain_words():
    pages = all_help_pages()
    assert {"edit", "weights import", "directions learn", "cache clean"} <= set(pages)
    for name, text in pages.items():
        assert text.startswith("Usage:"), name
        placeholders = set(re.findall(r"<[a-z][^<> ]*(?: range)?>", text)) - {"<direction>", "<strength>", "<variant>"}
        assert not placeholders, (name, placeholders)
        assert "{" not in text.splitlines()[0], name
    assert "Usage: stylecli edit [OPTIONS] INPUT..." in pages["edit"]
    assert "--blend BLEND" in pages["edit"] and "--steps N" in pages["edit"] and "--shard K/N" in pages["edit"]
    assert "--checkpoint PATH" in pages["evaluate"] and "--device [auto|cpu|cuda|mps]" in pages["evaluate"]


def test_directions_lists_what_fits_a_local_checkpoint(tmp_path, tiny_checkpoint):
    from conftest import tiny_config, tiny_model

    from stylecli.encoders.formats.e4e import default_opts, save_checkpoint

    cars = tmp_path / "cars.pt"
    save_checkpoint(tiny_model(), cars, default_opts(tiny_config(), dataset_type="cars_encode"))
    names = [row.split("\t")[0] for row in invoke("directions", "--checkpoint", cars).stdout.splitlines()[1:]]
    assert "ganspace:grass" in names and "sefa:K" in names and "age" not in names and "ganspace:bald" not in names
    unknown = invoke("directions", "--checkpoint", tiny_checkpoint)  # 8 styles: not the FFHQ generator it claims
    assert unknown.exit_code == 0 and "does not say what it was trained on" in unknown.stderr
    # Only what applies to its 8 style layers: no FFHQ (18) or cars (16) directions, no GANSpace preset.
    assert "age\t" not in unknown.stdout and "ganspace:" not in unknown.stdout and "sefa:K" in unknown.stdout
    both = invoke("directions", "--checkpoint", cars, "--model", "e4e_ffhq")
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = invoke("directions", "--checkpoint", tmp_path / "nope.pt")
    assert missing.exit_code == 2 and "nope.pt" in missing.stderr and "Traceback" not in missing.stderr


def test_direction_defaults_and_bad_files_are_said_plainly(tmp_path, tiny_checkpoint, capsys):
    from types import SimpleNamespace

    from helpers import real_format_pca

    from stylecli.cli.photos import edit_plan, resolve_plan
    from stylecli.editing.resolve import resolve_edit

    real_format_pca(tmp_path / "ffhq_pca.pt")
    editor = SimpleNamespace(n_styles=18, keep=lambda edits, keep: (edits, []), resolve_edit=lambda spec, layers:
                             resolve_edit(spec, 18, None, layers, resolve_file=lambda n: tmp_path / f"{n}.pt"))
    plan = edit_plan(["ganspace:5", "ganspace:7"], [2.0], None, False, False, False, False, "feather", layers="0-3")
    plan = resolve_plan(plan, editor, "0-3")
    assert len(plan.notes) == 1 and "ganspace:7 without --strength: moved to coordinate 0" in plan.notes[0]
    assert capsys.readouterr().err.count("stylecli: note: ganspace:7") == 1
    assert not resolve_plan(edit_plan(["ganspace:5"], [0.0], None, False, False, False, False, "feather", layers="0-3"),
                            editor, "0-3").notes  # asked for 0: nothing to say
    np.save(tmp_path / "x.npy", np.zeros((8, 32), np.float32))
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file " * 20)
    result = invoke("edit", tmp_path / "x.npy", "--checkpoint", tiny_checkpoint, "-d", tmp_path / "garbage.npy",
                    "-o", tmp_path / "o")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.strip().endswith("e.g. one `stylecli directions learn` wrote")
    np.save(tmp_path / "d31.npy", np.ones(31, np.float32))  # the tiny model's codes are 32 wide
    narrow = invoke("edit", tmp_path / "x.npy", tmp_path / "x.npy", "--checkpoint", tiny_checkpoint, "-d",
                    tmp_path / "d31.npy", "-o", tmp_path / "o", "--json")
    assert narrow.exit_code == 2 and narrow.stdout == "" and narrow.stderr.count("does not fit this model") == 1
    assert "d31.npy: direction of shape [1, 31]" in narrow.stderr


def test_damaged_checkpoints_and_lec_edits_are_named_plainly(tmp_path, tiny_checkpoint, face_png):
    (tmp_path / "cut.pt").write_bytes(tiny_checkpoint.read_bytes()[:300_000])
    result = invoke("invert", face_png, "--no-align", "--checkpoint", tmp_path / "cut.pt", "-o", tmp_path / "o")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "corrupt or truncated (PytorchStreamReader failed reading zip archive" in result.stderr
    assert result.stderr.strip().endswith("); copy or download it again")
    lec = invoke("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--metrics", "l2,lec", "--lec-edit",
                 "sefa:99:3")
    assert lec.exit_code == 2 and "--lec-edit sefa:99: only" in lec.stderr


def test_records_note_conversions_and_cpu_batches_hold_one_face(tmp_path, tiny_checkpoint, face_png):
    from stylecli.pipeline.editor import FaceEditor

    Image.open(face_png).convert("L").save(tmp_path / "gray.png")
    Image.open(face_png).convert("P").save(tmp_path / "pal.png")
    result = invoke("invert", tmp_path / "gray.png", tmp_path / "pal.png", "--no-align", "--checkpoint",
                    tiny_checkpoint, "-o", tmp_path / "o", "--json")
    gray, pal = records(result)
    assert "grayscale image converted to RGB" in gray["notes"] and "palette image converted to RGB" in pal["notes"]
    assert FaceEditor.from_checkpoint(tiny_checkpoint, "cpu").batch_size == 1
    first = invoke("edit", tmp_path / "o" / "gray.npy", "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o",
                   tmp_path / "o", "-q")
    assert first.exit_code == 0, first.stderr
    again = invoke("edit", tmp_path / "o" / "gray.npy", "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o",
                   tmp_path / "o", "-q")
    assert again.exit_code == 1 and again.stderr.count("exists") == 1  # quiet, yet the error is said
