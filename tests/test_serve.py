"""`stylecli serve`: the editor's session (no browser), the `edit` client API, and the page in a real browser.

The server is the real command (`python -m stylecli serve`) on a free local port with tiny random models in
the official checkpoint formats (e4e, and ReStyle as a second encoder); the browser is Debian's chromium driven by
Playwright. Tuning runs a few steps of PTI with a stand-in for LPIPS (tests/offline_lpips.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_model
from offline_lpips import stand_in_lpips
from PIL import Image
from tiny_fidelity import save_tiny_restyle

from stylecli.encoders.formats.e4e import default_opts, save_checkpoint

if importlib.util.find_spec("gradio") is None:  # found, not imported: the server imports it, not these tests
    pytest.skip("the browser editor needs gradio: pip install 'stylecli[ui]'", allow_module_level=True)
pytest.importorskip("dlib")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def two_astronauts(path: Path) -> Path:
    """scikit-image's astronaut, beside a smaller copy of herself: two faces, the largest on the left."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    canvas = Image.new("RGB", (512 + 384, 512), (200, 200, 200))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(astronaut.resize((384, 384)), (512, 64))
    canvas.save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    save_checkpoint(tiny_model(), root / "tiny.pt", default_opts(tiny_config()))
    (root / "directions").mkdir()
    turn = np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32)
    np.save(root / "directions" / "turn.npy", turn)
    np.save(root / "directions" / "too_wide.npy", np.ones((1, 64), dtype=np.float32))  # fits no slider
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a picture")
    save_tiny_restyle(root / "restyle.pt")
    return {"root": root, "checkpoint": root / "tiny.pt", "directions": root / "directions",
            "photo": two_astronauts(root / "astronauts.png"), "broken": root / "broken.png",
            "restyle": root / "restyle.pt"}


# A few steps that visibly move a tiny generator (PTI's defaults: up to 350 steps at 3e-4, stopping at LPIPS 0.06).
TUNING = ["--tune-steps", "5", "--tune-lr", "0.01", "--tune-lpips-stop", "0"]
TUNED = "astronauts_tuned-s5-lr0.01-stop0"  # the tuning settings are in the output names


# Loaded by the server's Python at start: records (and refuses) every look-up or connection beyond this machine.
NETWORK_GUARD = """
import os, socket
LOCAL = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "")
def _note(what):
    with open(os.environ["STYLECLI_TEST_OUTSIDE"], "a") as f:
        f.write(repr(what) + "\\n")
    raise OSError("tests run offline")
_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect
def getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in LOCAL:
        _note(host)
    return _getaddrinfo(host, *args, **kwargs)
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and str(address[0]) not in LOCAL:
        _note(address)
    return _connect(self, address)
socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
if os.environ.get("STYLECLI_TEST_LPIPS"):  # tuning without torchvision's AlexNet (see offline_lpips)
    import sys
    sys.path.insert(0, os.environ["STYLECLI_TEST_LPIPS"])
    import stylecli.registry.networks, offline_lpips
    stylecli.registry.networks.lpips_model = offline_lpips.stand_in_lpips
    import stylecli.serve.sliders as sliders  # the README's sliders, after the tiny model's own
    _discover = sliders.discover
    sliders.discover = lambda *a, **k: _discover(*a, **k) + __import__("test_serve").readme_sliders()
"""


def readme_sliders():
    """Random stand-ins for the sliders the README's client example moves and keeps (a tiny model has no named
    directions): InterFaceGAN's age and gender, GANSpace's smile."""
    from stylecli.editing.ganspace import ganspace_edit
    from stylecli.editing.interfacegan import DirectionEdit
    from stylecli.serve.sliders import Direction, Slider

    gen = torch.Generator().manual_seed(5)
    pca = {"mean": torch.randn(1, 32, generator=gen), "comp": torch.nn.functional.normalize(
        torch.randn(4, 1, 32, generator=gen), dim=-1), "std": torch.rand(4, generator=gen) + 0.5}
    out = [Direction(Slider(name, name, "InterFaceGAN", 3.0, 0.1, name),
                     DirectionEdit(label=name, direction=torch.randn(1, 32, generator=gen)))
           for name in ("age", "gender")]
    smile = Slider("ganspace:smile", "smile", "GANSpace", 30, 0.5, "ganspace_smile", relative=True)
    return [*out, Direction(smile, ganspace_edit(pca, 2, (0, 1, 2), 5.0, "smile"))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(files):
    """The real command on a free port; yields its URL and log file."""
    port, root = free_port(), files["root"]
    (root / "guard").mkdir()
    (root / "guard" / "sitecustomize.py").write_text(NETWORK_GUARD)
    outside = root / "outside.txt"
    outside.touch()
    (root / "tmp").mkdir()  # the server's working folder is made here
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(root / "guard"), str(REPO)]), "STYLECLI_TEST_OUTSIDE": str(outside),
           "GRADIO_TEMP_DIR": str(root / "gradio"), "STYLECLI_CACHE": str(root / "cache"),
           "HF_HOME": str(root / "hf"), "NO_PROXY": "127.0.0.1,localhost",
           "STYLECLI_TEST_LPIPS": str(Path(__file__).parent), "TMPDIR": str(root / "tmp")}
    log = root / "server.log"
    with open(log, "w") as out:  # paths as a user types them in the folder of the models (the command box's)
        proc = subprocess.Popen([sys.executable, "-m", "stylecli", "serve", "--checkpoint", "tiny.pt", "--checkpoint",
                                 "restyle.pt", "--directions", "directions", *TUNING, "--port", str(port),
                                 "--no-browser", "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while not answers(url):
            assert proc.poll() is None, f"server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"server did not start: {log.read_text()}"
            time.sleep(0.3)
        yield url, log, proc, root / "tmp"
        assert outside.read_text() == "", "the server tried to reach the network"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def pixels(path_or_bytes) -> np.ndarray:
    import io

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return np.asarray(Image.open(src).convert("RGB"))


# -- the session, without a server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(files):
    """The e4e model (sliders) with ReStyle beside it, and tuning of a few steps."""
    from stylecli.serve.server import prepare
    from stylecli.tuning import TuningConfig

    notes: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("stylecli.registry.networks.lpips_model", stand_in_lpips)
        session = prepare([files["checkpoint"], files["restyle"]], device="cpu", directions_dir=files["directions"],
                          note=notes.append, tuning=TuningConfig(steps=5, lr=0.01, lpips_stop=0))
        yield session, notes
    session.close()


@pytest.fixture
def session(loaded):
    session, _ = loaded
    directions = list(session.directions)
    yield session
    session.directions = directions


def test_sliders_are_the_directions_that_fit(loaded):
    session, notes = loaded
    specs = [d.slider.spec for d in session.directions]
    assert specs == [f"sefa:{k}" for k in range(5)] + [str(session.directions[-1].slider.spec)]
    assert session.directions[-1].slider.key == "file_turn"
    assert any("too_wide.npy left out" in n for n in notes)  # a [1, 64] file on a 32-wide model


def test_named_sliders_for_an_ffhq_model():
    """An FFHQ-shaped model gets a slider per catalog direction whose file loads (one note per missing file);
    GANSpace sliders shift the face's own coordinate, InterFaceGAN ones span the catalog's range."""
    from stylecli.editing import named_directions
    from stylecli.editing.interfacegan import DirectionEdit
    from stylecli.errors import StyleCliError
    from stylecli.serve.sliders import discover

    class FFHQ:
        n_styles, style_dim, domain = 18, 512, "ffhq"

        def resolve(self, spec):
            if spec in ("age", "beard"):
                raise StyleCliError(f"{spec}: not available here")
            return DirectionEdit(label=spec, direction=torch.ones(1, 512))

        def apply(self, code, edit, strength):
            return edit.apply(torch.from_numpy(code)[None], strength)[0].numpy()

    notes: list[str] = []
    found = discover(FFHQ(), None, notes.append)
    named = [d.name for d in named_directions("ffhq") if d.name not in ("age", "beard")]
    assert [d.slider.spec for d in found] == named + [f"sefa:{k}" for k in range(5)]
    assert notes == ["InterFaceGAN sliders reading age left out: age: not available here",
                     "InterFaceGAN sliders reading beard left out: beard: not available here"]
    sliders = {d.slider.spec: d.slider for d in found}
    assert (sliders["smile"].limit, sliders["smile"].relative, sliders["smile"].key) == (3.0, False, "smile")
    white_hair = sliders["ganspace:white_hair"]  # published at -24: the slider shifts up to 36 either way
    assert (white_hair.limit, white_hair.relative, white_hair.key) == (36, True, "ganspace_white_hair")


def test_render_matches_the_command_line_it_shows(session, files, tmp_path, monkeypatch):
    """The browser's files equal what `stylecli edit` makes from the command in the page's box."""
    from helpers import invoke

    upload = session.open(files["photo"])
    assert [f.area for f in upload.faces] == sorted((f.area for f in upload.faces), reverse=True)
    assert len(upload.faces) == 2
    out = session.render(session.invert(upload, 1), {"sefa_0": 3.0, "file_turn": -1.5})
    assert out.command == (f"stylecli edit astronauts.png --faces 1 -d sefa:0 -s 3 -d {files['directions']}/turn.npy"
                           f" -s -1.5 --save-latent --paste-back --checkpoint {files['checkpoint']}")
    names = sorted(p.name for p in out.files)
    assert names == ["astronauts_face1_sefa-0+3_turn-1.5.align.json", "astronauts_face1_sefa-0+3_turn-1.5.npy",
                     "astronauts_face1_sefa-0+3_turn-1.5.png", "astronauts_sefa-0+3_turn-1.5_pasted.png"]
    monkeypatch.chdir(files["root"])
    cli_out = tmp_path / "cli"
    args = out.command.split()[2:] + ["--device", "cpu", "-o", str(cli_out)]  # the command as shown
    assert invoke("edit", *args).exit_code == 0
    for path in out.files:
        if path.suffix == ".png":
            diff = np.abs(pixels(path).astype(int) - pixels(cli_out / path.name).astype(int))
            assert diff.max() <= 1, path.name
    latent = next(p for p in out.files if p.suffix == ".npy")
    np.testing.assert_allclose(np.load(latent), np.load(cli_out / latent.name), atol=1e-5)
    page_side, cli_side = (json.loads((d / f"{latent.stem}.align.json").read_text()) for d in (latent.parent, cli_out))
    assert page_side["quad"] == cli_side["quad"] and page_side["face_index"] == cli_side["face_index"] == 1

    # The sidecar names the photo as uploaded, and nothing of the server's folders.
    sidecar = next(p for p in out.files if p.name.endswith(".align.json"))
    data = json.loads(sidecar.read_text())
    assert data["source"] == "astronauts.png" and "source_absolute" not in data and data["face_index"] == 1
    assert str(session.workdir) not in sidecar.read_text() and "/tmp" not in sidecar.read_text()

    # The downloaded latent and sidecar continue in the CLI, from any folder: paste-back finds the photo beside
    # them.
    download = tmp_path / "download"
    download.mkdir()
    for path in [*out.files, files["photo"]]:
        (download / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    latent = download / "astronauts_face1_sefa-0+3_turn-1.5.npy"
    again = invoke("edit", latent, "-d", "sefa:1", "-s", "0", "--paste-back", "--checkpoint", files["checkpoint"],
                   "--device", "cpu", "-o", tmp_path / "again")
    assert again.exit_code == 0, again.stderr
    pasted = pixels(tmp_path / "again" / "astronauts_face1_sefa-0+3_turn-1.5_sefa-1+0_pasted.png")
    assert np.abs(pasted.astype(int) - pixels(out.files[0]).astype(int)).max() <= 1


def test_encoder_choices_are_each_models_own_and_tuning_from_it(session, files):
    """e4e (the sliders' model), ReStyle beside it, and tuning from each; the command names the model (and
    --tune); a slider resolves against the model that encoded the face, as `stylecli edit --checkpoint` does."""
    from stylecli.errors import InputError

    pytest.importorskip("lpips")  # tuning is offered with the package that measures it
    assert [(e.key, e.label) for e in session.encoders] == [
        ("e4e", "e4e"), ("e4e+tuning", "e4e + tuning (PTI, at most 5 steps)"),
        ("restyle", "ReStyle"), ("restyle+tuning", "ReStyle + tuning (PTI, at most 5 steps)")]
    upload = session.open(files["photo"])
    e4e, restyle = session.invert(upload, 0), session.invert(upload, 0, "restyle")
    assert e4e.choice.key == "e4e" and session.invert(upload, 0, "e4e") is e4e  # inverted once per choice
    assert np.abs(e4e.reconstruction.astype(int) - restyle.reconstruction.astype(int)).max() > 10
    out = session.render(restyle, {"sefa_0": 3.0}, paste_back=False)
    assert out.command == f"stylecli edit astronauts.png -d sefa:0 -s 3 --save-latent --checkpoint {files['restyle']}"
    sefa = session.backend.resolve("sefa:0")  # e4e's generator
    own = next(e for e in session.encoders if e.key == "restyle").backend.resolve("sefa:0")
    latent = np.load(next(p for p in out.files if p.suffix == ".npy"))
    np.testing.assert_allclose(latent, own.apply(torch.from_numpy(restyle.code)[None], 3.0)[0].numpy(), atol=1e-5)
    assert np.abs(latent - sefa.apply(torch.from_numpy(restyle.code)[None], 3.0)[0].numpy()).max() > 1e-3
    with pytest.raises(InputError, match="encoder 'hyperstyle': this editor offers e4e, e4e\\+tuning, restyle"):
        session.invert(upload, 0, "hyperstyle")


def test_tuning_matches_its_command_and_the_download_continues(session, files, tmp_path, monkeypatch):
    """Tuning a face: the page hears every step, the reconstruction comes closer to the face than e4e's, the
    files equal what the command in the box makes, and the downloaded latent renders through its
    .tuned.safetensors in the CLI."""
    from helpers import invoke

    pytest.importorskip("lpips")
    monkeypatch.setattr("stylecli.registry.networks.lpips_model", stand_in_lpips)
    upload = session.open(files["photo"])
    heard: list[tuple[int, int]] = []
    tuned = session.invert(upload, 0, "e4e+tuning", lambda step, total, lpips: heard.append((step, total)))
    assert heard == [(k, 5) for k in range(6)] and tuned.notes[0].startswith("tuned in 5 steps, LPIPS ")
    e4e = session.invert(upload, 0)
    np.testing.assert_array_equal(tuned.code, e4e.code)  # the pivot is the encoder's code
    target = session.backend.editor.target(upload.pixels, upload.faces[0]).astype(float)
    distance = {k: np.mean((inv.reconstruction - target) ** 2) for k, inv in (("e4e", e4e), ("tuned", tuned))}
    assert distance["tuned"] < 0.8 * distance["e4e"], distance

    out = session.render(tuned, {"sefa_0": 3.0})
    assert out.command == (f"stylecli edit astronauts.png -d sefa:0 -s 3 --save-latent --paste-back --checkpoint "
                           f"{files['checkpoint']} --tune {' '.join(TUNING)}")
    assert sorted(p.name for p in out.files) == [
        f"{TUNED}_sefa-0+3.align.json", f"{TUNED}_sefa-0+3.npy", f"{TUNED}_sefa-0+3.png",
        f"{TUNED}_sefa-0+3.tuned.safetensors", f"{TUNED}_sefa-0+3_pasted.png"]
    monkeypatch.chdir(files["root"])
    cli = invoke("edit", *out.command.split()[2:], "--device", "cpu", "-q", "-o", tmp_path / "cli")
    assert cli.exit_code == 0, cli.stderr
    for path in out.files:
        if path.suffix in (".png", ".npy"):
            mine, theirs = (np.load(p) if p.suffix == ".npy" else pixels(p).astype(int)
                            for p in (path, tmp_path / "cli" / path.name))
            assert np.abs(mine - theirs).max() <= 1, path.name

    download = tmp_path / "download"
    download.mkdir()
    for path in [*out.files, files["photo"]]:
        (download / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    again = invoke("edit", download / f"{TUNED}_sefa-0+3.npy", "-d", "sefa:1", "-s", "0", "--paste-back",
                   "--checkpoint", files["checkpoint"], "--device", "cpu", "-o", tmp_path / "again")
    assert again.exit_code == 0 and "rendering through" in again.stderr, again.stderr
    pasted = pixels(tmp_path / "again" / f"{TUNED}_sefa-0+3_sefa-1+0_pasted.png").astype(int)
    assert np.abs(pasted - pixels(out.files[0]).astype(int)).max() <= 1


def test_hyperstyle_offers_no_tuning_and_downloads_its_offsets(files, tmp_path):
    """A HyperStyle model renders each photo with its own offsets: no tuning choice (`--tune` refuses it), and
    the download carries NAME.hyperstyle.npz, which renders the latent as the page did; one pass instead of the
    official 5 is in the names (`_steps1`), as the CLI names them."""
    from tiny_fidelity import save_tiny_hyperstyle

    from stylecli.pipeline.editor import FaceEditor
    from stylecli.pipeline.sources import source_code
    from stylecli.serve.backend import Backend
    from stylecli.serve.encoders import choices
    from stylecli.serve.session import EditorSession
    from stylecli.serve.sliders import discover
    from stylecli.tuning.stage import Tuner

    _, path, w_path = save_tiny_hyperstyle(tmp_path)
    editor = FaceEditor.from_checkpoint(path, "cpu", steps=1, w_encoder=w_path)
    backend = Backend(editor, ["--checkpoint", str(path), "--steps", "1", "--w-encoder", str(w_path)], str(path))
    assert [c.key for c in choices([backend], Tuner())] == ["hyperstyle"]
    session = EditorSession(backend, discover(backend), tmp_path / "work")
    out = session.render(session.invert(session.open(files["photo"]), 0), {"sefa_1": 2.0}, paste_back=False)
    latent = next(p for p in out.files if p.suffix == ".npy")
    assert [p.name for p in out.files] == [f"astronauts_steps1_sefa-1+2{end}" for end in (
        ".png", ".npy", ".align.json", ".hyperstyle.npz")]
    again = source_code(backend.editor, latent)  # how `stylecli edit LATENT` reads it
    rendered = backend.editor.synthesize(again.codes, again.weights)[0]
    assert np.abs(rendered.astype(int) - pixels(out.files[0]).astype(int)).max() <= 1
    session.close()


def test_models_of_one_page_take_the_same_codes(files, tmp_path):
    from helpers import invoke

    from stylecli.errors import UsageError
    from stylecli.serve.server import prepare

    save_checkpoint(tiny_model(size=16), tmp_path / "small.pt", default_opts(tiny_config(size=16)))
    with pytest.raises(UsageError, match=r"small\.pt: takes \[6, 32\] codes .* but .*tiny\.pt takes \[8, 32\]"):
        prepare([files["checkpoint"], tmp_path / "small.pt"], device="cpu", note=lambda _: None)
    twice = invoke("serve", "--checkpoint", files["checkpoint"], "--checkpoint", files["checkpoint"])
    assert twice.exit_code == 2 and "given twice" in twice.stderr


def test_ganspace_slider_shifts_the_faces_own_coordinate(session, files):
    """A GANSpace slider at v moves the target coordinate to (the face's coordinate + v); the command names
    that target, so `--strength` means what it means in the CLI."""
    from stylecli.editing.ganspace import ganspace_edit
    from stylecli.serve.sliders import Direction, Slider

    gen = torch.Generator().manual_seed(3)
    pca = {"mean": torch.randn(1, 32, generator=gen), "comp": torch.nn.functional.normalize(
        torch.randn(4, 1, 32, generator=gen), dim=-1), "std": torch.rand(4, generator=gen) + 0.5}
    edit = ganspace_edit(pca, 2, (0, 1, 2), 5.0, "ganspace-test")
    session.directions = [Direction(Slider("ganspace:test", "test", "GANSpace", 30, 0.5, "g", relative=True), edit)]
    inverted = session.invert(session.open(files["photo"]), 0)
    code = torch.from_numpy(inverted.code)[None]
    own = float(edit.coordinate(code)[0])
    out = session.render(inverted, {"g": 2.0}, paste_back=False)
    target = round(own + 2.0, 3)
    assert f"-d ganspace:test -s {target:g}" in out.command
    edited = np.load(next(p for p in out.files if p.suffix == ".npy"))
    assert float(edit.coordinate(torch.from_numpy(edited)[None])[0]) == pytest.approx(target, abs=1e-4)
    assert session.render(inverted, {"g": 0.0}, paste_back=False).command.startswith("stylecli invert")


def test_keep_conditions_every_edit_as_the_cli_does(session, files):
    """Keep checkboxes: each edit moves orthogonally to the kept directions (FaceEditor.keep); the command line
    says --keep, and the cosines reach the status notes."""
    from stylecli.editing import conditioned_edit

    assert ("turn", str(files["directions"] / "turn.npy")) in session.keep_choices
    assert all(not spec.startswith("ganspace:") for _, spec in session.keep_choices)
    inverted = session.invert(session.open(files["photo"]), 0)
    out = session.render(inverted, {"sefa_0": 3.0, "file_turn": 2.0}, paste_back=False, keep=["sefa:1"])
    assert " --keep sefa:1" in out.command and len(out.notes) == 2 and "cosine" in out.notes[1]
    kept = session.backend.resolve("sefa:1")
    expected = torch.from_numpy(inverted.code)[None]
    for spec, strength in (("sefa:0", 3.0), (str(files["directions"] / "turn.npy"), 2.0)):
        expected = conditioned_edit(session.backend.resolve(spec), [kept])[0].apply(expected, strength)
    latent = np.load(next(p for p in out.files if p.suffix == ".npy"))
    np.testing.assert_allclose(latent, expected[0].numpy(), atol=1e-5)
    plain = np.load(next(p for p in session.render(inverted, {"sefa_0": 3.0, "file_turn": 2.0}).files
                         if p.suffix == ".npy"))
    assert np.abs(plain - latent).max() > 1e-3  # keeping changed the edit


def test_blend_choice_follows_the_library(session, files, monkeypatch):
    """"seamless" is offered once paste_back takes a blend, and reaches it and the command line."""
    import stylecli.faces

    assert session.backend.blends[0] == "feather"
    calls = []

    def paste_back(photo, face, quad, blend="feather"):
        calls.append(blend)
        return photo

    monkeypatch.setattr(stylecli.faces, "paste_back", paste_back)
    assert session.backend.blends == ["feather", "seamless"]
    out = session.render(session.invert(session.open(files["photo"]), 0), {"sefa_0": 1.0}, blend="seamless")
    assert calls == ["seamless"] and out.command.split("--paste-back")[1].startswith(" --blend seamless")


def test_disk_use_stays_bounded(session, files, monkeypatch):
    """A browser session keeps its newest renders of each output (previews, downloads: KEPT_RENDERS), and its
    own preview of the photo while a kept render compares against it, all in its own folder."""
    import stylecli.serve.session as module

    monkeypatch.setattr(module, "KEPT_RENDERS", 2)
    inverted = session.invert(session.open(files["photo"]), 0)
    outs = [session.render(inverted, {"sefa_0": float(v)}, paste_back=v % 2 == 0, client="disk") for v in range(1, 5)]
    assert [o.after.exists() for o in outs] == [False, False, True, True]
    mine = outs[-1].after.parent.parent
    assert outs[-1].before.exists() and outs[-1].before.is_relative_to(mine) and mine.parent == session.workdir
    assert len([p for p in mine.iterdir() if p.name.startswith("r")]) == 2
    assert not any(p.is_relative_to(mine) for p in session.render(inverted, {}, client="other").files)


def test_bad_upload_is_one_line_naming_the_file(session, files):
    from stylecli.errors import InputError

    with pytest.raises(InputError, match=r"^broken\.png: (not an image|broken)") as info:
        session.open(files["broken"])
    assert "\n" not in str(info.value) and str(files["root"]) not in str(info.value)


def test_a_photo_over_the_pixel_limit_names_the_servers_option(session, files, monkeypatch):
    from stylecli.errors import InputError

    monkeypatch.setattr(session.backend.editor, "max_pixels", 100)
    with pytest.raises(InputError) as info:
        session.open(files["photo"], "big.png")  # (a name of its own: the photo is not taken from the cache)
    said = str(info.value)
    assert said.startswith("big.png: ") and "`stylecli serve --max-pixels`" in said, said
    assert str(files["root"]) not in said and "\n" not in said


def test_only_uploads_are_opened(files, tmp_path):
    """A request naming any other server path (the model, /etc/...) is refused before anything reads it."""
    from stylecli.errors import InputError
    from stylecli.serve.app import uploaded

    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    (uploads / "abc" / "me.png").write_bytes(b"x")
    assert uploaded(str(uploads / "abc" / "me.png"), uploads) == (uploads / "abc" / "me.png").resolve()
    for elsewhere in (files["checkpoint"], Path("/etc/hostname"), uploads / ".." / "x.png"):
        with pytest.raises(InputError, match="not an uploaded file"):
            uploaded(str(elsewhere), uploads)


def test_serve_usage_errors(files):
    from helpers import invoke

    result = invoke("serve", "--checkpoint", files["checkpoint"], "--directions", files["root"] / "nope")
    assert result.exit_code == 2 and "--directions" in result.stderr


def test_serve_without_gradio_says_how_to_install(files, monkeypatch):
    from helpers import invoke

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else find_spec(name, *a))
    result = invoke("serve", "--checkpoint", files["checkpoint"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "stylecli: error: the browser editor needs Gradio: pip install 'stylecli[ui]'"


def test_serve_binds_locally_unless_told(files, monkeypatch):
    """127.0.0.1 by default; another --host works but warns; --share only when asked."""
    from helpers import invoke

    import stylecli.serve.server as server

    calls, checked = [], []
    monkeypatch.setattr(server, "check_address", lambda host, port: checked.append((host, port)))  # binds nothing
    monkeypatch.setattr(server, "prepare", lambda *args: "session")
    monkeypatch.setattr(server, "launch", lambda *args, **kw: calls.append((args, kw)))
    result = invoke("serve", "--checkpoint", files["checkpoint"], "--no-browser")
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert calls[-1] == (("session", "127.0.0.1", 7860, False), {"open_browser": False})
    result = invoke("serve", "--checkpoint", files["checkpoint"], "--host", "0.0.0.0", "--port", "8000")
    assert "warning: listening on 0.0.0.0: anyone" in result.stderr
    assert calls[-1] == (("session", "0.0.0.0", 8000, False), {"open_browser": True})
    result = invoke("serve", "--checkpoint", files["checkpoint"], "--share", "--no-browser")
    assert result.exit_code == 0 and "warning: --share makes a public link: anyone with it" in result.stderr
    assert calls[-1] == (("session", "127.0.0.1", 7860, True), {"open_browser": False})
    assert checked == [("127.0.0.1", 7860), ("0.0.0.0", 8000), ("127.0.0.1", 7860)]
    monkeypatch.chdir(files["root"])
    same = invoke("serve", "--checkpoint", "tiny.pt", "--checkpoint", files["checkpoint"], "--no-browser")
    assert same.exit_code == 2 and f"{files['checkpoint']}: given twice" in same.stderr  # however it is written


def test_tuning_settings_are_printed_exactly():
    from stylecli.serve.encoders import tune_args
    from stylecli.tuning import TuningConfig
    from stylecli.tuning.stage import Tuner

    assert tune_args(Tuner(TuningConfig(steps=5, lr=1.234567e-4, lpips_stop=0))) == [
        "--tune", "--tune-steps", "5", "--tune-lr", "0.0001234567", "--tune-lpips-stop", "0"]


def test_keep_holds_what_it_can_and_leaves_ganspace_alone(session, files):
    """Keep with a GANSpace slider moved: the InterFaceGAN, SeFa and file sliders are conditioned as `--keep`
    does, GANSpace moves to its target as it is (said in the status); no one command does that (the CLI
    refuses --keep with GANSpace), and the box says so."""
    from stylecli.editing import conditioned_edit

    session.directions = [*session.directions, *readme_sliders()]
    age, gender, smile = (d.edit for d in readme_sliders())
    inverted = session.invert(session.open(files["photo"]), 0)
    out = session.render(inverted, {"age": 2.5, "ganspace_smile": 4.0}, paste_back=False, keep=["gender"])
    assert out.command.startswith("# not one stylecli command: `edit --keep` refuses GANSpace")
    assert "Keep leaves the GANSpace sliders unconditioned" in out.notes[-1]
    code = conditioned_edit(age, [gender])[0].apply(torch.from_numpy(inverted.code)[None], 2.5)
    target = round(float(smile.coordinate(code)[0]) + 4.0, 3)
    latent = next(p for p in out.files if p.suffix == ".npy")
    np.testing.assert_allclose(np.load(latent), smile.apply(code, target)[0].numpy(), atol=1e-4)
    assert latent.name == f"astronauts_age_keep-gender+2.5_smile{target:+g}.npy"
    alone = session.render(inverted, {"ganspace_smile": 4.0}, paste_back=False, keep=["gender"])
    assert alone.command.startswith("stylecli edit astronauts.png -d ganspace:smile") and "--keep" not in alone.command


def test_command_box_makes_the_downloads(session, files, tmp_path, monkeypatch):
    """Every slider at 0 with paste-back is a zero-strength edit (an `invert` cannot paste back); the photo is
    named as the user's machine names it (the web server's copy lost `(`, `)` and `!`); a server reading
    larger photos says --max-pixels; the command, run where the photo is, makes the same files."""
    import shlex

    from helpers import invoke

    (tmp_path / "server").mkdir()
    copy = tmp_path / "server" / "me 1.png"
    copy.write_bytes(files["photo"].read_bytes())
    monkeypatch.setattr(session.backend.editor, "max_pixels", 200_000_000)
    out = session.render(session.invert(session.open(copy, "me (1)!.png"), 0), {})
    assert out.command == ("stylecli edit 'me (1)!.png' -d sefa:0 -s 0 --save-latent --paste-back --checkpoint "
                           f"{files['checkpoint']} --max-pixels 200000000")
    assert sorted(p.name for p in out.files) == ["me (1)!_sefa-0+0.align.json", "me (1)!_sefa-0+0.npy",
                                                 "me (1)!_sefa-0+0.png", "me (1)!_sefa-0+0_pasted.png"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "me (1)!.png").write_bytes(files["photo"].read_bytes())
    monkeypatch.chdir(tmp_path / "mine")
    result = invoke("edit", *shlex.split(out.command)[2:], "--device", "cpu", "-q", "-o", tmp_path / "cli")
    assert result.exit_code == 0, result.stderr
    for path in out.files:
        theirs = tmp_path / "cli" / path.name
        if path.suffix == ".png":
            assert np.abs(pixels(path).astype(int) - pixels(theirs).astype(int)).max() <= 1, path.name
        elif path.suffix == ".json":
            assert json.loads(path.read_text())["source"] == "me (1)!.png"
            assert json.loads(path.read_text())["quad"] == json.loads(theirs.read_text())["quad"]


def test_previews_paste_at_preview_size_downloads_at_full(session, files, tmp_path, monkeypatch):
    """A slider move pastes into the photo's preview (at most PREVIEW_SIZE wide), not into the whole photo;
    "Prepare downloads" pastes into the full resolution."""
    from stylecli.serve.session import PREVIEW_SIZE

    big = tmp_path / "big.png"
    Image.open(files["photo"]).resize((1792, 1024), Image.Resampling.LANCZOS).save(big)
    inverted = session.invert(session.open(big), 0)
    backend, into = inverted.choice.backend, []
    paste = backend.paste
    monkeypatch.setattr(backend, "paste", lambda photo, *a: into.append(photo.shape[:2]) or paste(photo, *a))
    small = (round(1024 * PREVIEW_SIZE / 1792), PREVIEW_SIZE)
    preview = session.render(inverted, {"sefa_0": 4.0}, save=False)
    assert into == [small] and pixels(preview.after).shape[:2] == small
    saved = session.render(inverted, {"sefa_0": 4.0})
    assert into[-1] == (1024, 1792) and pixels(saved.files[0]).shape[:2] == (1024, 1792)
    shrunk = np.asarray(Image.open(saved.files[0]).resize(small[::-1], Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(shrunk - pixels(preview.after).astype(int)).mean() < 4  # the same edit, at two sizes
    quad = np.asarray(inverted.upload.faces[0].quad)
    assert np.allclose(inverted.upload.small_quad(0), quad * PREVIEW_SIZE / 1792, atol=1)


# -- the client API and the browser, against the real server ----------------------------------------------------


@pytest.mark.slow
def test_edit_through_the_client_api(server, files, tmp_path):
    from gradio_client import Client, handle_file

    url, log, *_ = server
    client = Client(url, verbose=False, download_files=str(tmp_path))
    status, aligned, recon, edited, (before, after), command, downloads = client.predict(
        photo=handle_file(str(files["photo"])), face=0, sefa_0=4.0, api_name="/edit")
    assert status.startswith("astronauts.png: 896x512, 2 faces, editing face 0 (the largest), e4e."), log.read_text()
    assert pixels(aligned).shape == (256, 256, 3)
    assert pixels(recon).shape == pixels(edited).shape == (32, 32, 3)
    assert np.abs(pixels(recon).astype(int) - pixels(edited).astype(int)).max() > 10
    assert pixels(after).shape == pixels(before).shape == (512, 896, 3)  # previews: photos up to 1280 wide
    assert np.abs(pixels(after).astype(int) - pixels(before).astype(int)).max() > 10
    assert "-d sefa:0 -s 4 --save-latent --paste-back" in command
    assert sorted(Path(p).name for p in downloads) == [
        "astronauts_sefa-0+4.align.json", "astronauts_sefa-0+4.npy", "astronauts_sefa-0+4.png",
        "astronauts_sefa-0+4_pasted.png"]
    assert pixels(next(p for p in downloads if p.endswith("_pasted.png"))).shape == (512, 896, 3)
    sidecar = json.loads(Path(next(p for p in downloads if p.endswith(".align.json"))).read_text())
    assert sidecar["source"] == "astronauts.png" and "source_absolute" not in sidecar

    # The encoder by its key: ReStyle inverts the face again; the command names its checkpoint.
    status, _, restyled, *_, command, _ = client.predict(photo=handle_file(str(files["photo"])), face=0,
                                                         sefa_0=4.0, encoder="restyle", api_name="/edit")
    assert ", ReStyle." in status and command.endswith("--paste-back --checkpoint restyle.pt")
    assert np.abs(pixels(recon).astype(int) - pixels(restyled).astype(int)).max() > 10
    status = client.predict(photo=handle_file(str(files["broken"])), api_name="/edit")[0]
    assert status.startswith("**Error:** broken.png:")

    # The README's example, as written there but for the address and the photo: Keep holds age to gender and
    # leaves the GANSpace smile as it is.
    example = "from gradio_client" + (REPO / "README.md").read_text().split("```python\nfrom gradio_client")[1]
    example = example.split("```")[0].replace('"http://127.0.0.1:7860/"', f"{url!r}, download_files={str(tmp_path)!r}")
    scope: dict = {}
    exec(example.replace('"me.jpg"', repr(str(files["photo"]))), scope)  # noqa: S102 - the README's own code
    assert "e4e + tuning" in scope["status"] and "GANSpace sliders unconditioned" in scope["status"], scope["status"]
    assert scope["command"].startswith("# not one stylecli command") and len(scope["files"]) == 5


def browser():
    sync = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    return sync.sync_playwright()


@pytest.mark.slow
def test_editor_in_a_real_browser(server, files, tmp_path):
    pytest.importorskip("lpips")  # the server offers tuning
    url, log, _, tmp = server
    work = next(tmp.glob("stylecli-serve-*"))
    with browser() as p:
        chrome = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = chrome.new_page(viewport={"width": 1400, "height": 1000})
            run_the_editor(page, url, files, tmp_path, log, work)
        finally:
            chrome.close()
    if os.environ.get("STYLECLI_SERVE_SCREENSHOT"):  # docs/serve.png: 1100 px wide, 256 colours
        shot = Image.open(tmp_path / "editor.png").convert("RGB")
        shot = shot.resize((1100, round(shot.height * 1100 / shot.width)), Image.Resampling.LANCZOS)
        shot.quantize(256, dither=Image.Dither.NONE).save(os.environ["STYLECLI_SERVE_SCREENSHOT"], optimize=True)


def run_the_editor(page, url: str, files, shots: Path, log: Path, work: Path) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url)
    page.set_input_files("#photo input[type=file]", str(files["photo"]))
    status_has(page, "2 faces, editing face 0 (the largest), e4e.", log)
    page.locator("#faces .thumbnail-item").nth(1).click()  # the gallery: the largest face comes first
    status_has(page, "editing face 1, e4e.", log)
    command_is(page, "stylecli edit astronauts.png --faces 1 -d sefa:0 -s 0 --save-latent --paste-back --checkpoint "
               "tiny.pt")  # every slider at 0, pasted back: a zero-strength edit makes that photo
    page.locator("#faces .thumbnail-item").first.click()
    status_has(page, "editing face 0 (the largest)", log)
    recon = image_of(page, "#reconstruction img")
    first = page.locator("#edited img").get_attribute("src")
    page.locator("#slider-sefa_0 input[type=number]").fill("6")
    page.locator("#slider-sefa_0 input[type=number]").press("Enter")
    page.wait_for_function(f"document.querySelector('#edited img').src !== {first!r}", timeout=30_000)
    page.wait_for_function("document.querySelector('#command textarea').value.includes('-s 6')", timeout=30_000)
    edited = image_of(page, "#edited img")
    assert edited.shape == recon.shape and np.abs(edited.astype(int) - recon.astype(int)).max() > 10
    assert image_of(page, "#compare img", last=True).shape == (512, 896, 3)  # the after preview
    page.locator("#slider-file_turn input[type=range]").focus()
    renders = rendered(work)
    for _ in range(15):  # rapid moves while renders run: they coalesce, and the latest state is what shows
        page.keyboard.press("ArrowRight")
    edit = "stylecli edit astronauts.png -d sefa:0 -s 6 -d directions/turn.npy -s 1.5 --save-latent --paste-back"
    command_is(page, f"{edit} --checkpoint tiny.pt")  # the names as uploaded and as the server was started
    assert rendered(work) - renders < 10, "each move rendered: they did not coalesce"

    # Another encoder inverts the face again and renders the same sliders; tuning comes closer to the face.
    choose(page, "#encoder", "ReStyle")
    command_is(page, f"{edit} --checkpoint restyle.pt")
    status_has(page, "editing face 0 (the largest), ReStyle.", log)
    # (the page swaps the image in after the status: poll until the new reconstruction is there)
    assert eventually(lambda: np.abs(image_of(page, "#reconstruction img").astype(int) - recon.astype(int)).max()
                      > 10), "the reconstruction did not change with the encoder"
    choose(page, "#encoder", "e4e + tuning (PTI, at most 5 steps)")
    command_is(page, f"{edit} --checkpoint tiny.pt --tune {' '.join(TUNING)}")
    status_has(page, "editing face 0 (the largest), e4e + tuning (tuned in 5 steps, LPIPS", log)
    target = Image.fromarray(image_of(page, "#aligned img")).resize(recon.shape[:2], Image.Resampling.LANCZOS)
    distance = {k: np.mean((image.astype(float) - np.asarray(target)) ** 2)
                for k, image in (("e4e", recon), ("tuned", image_of(page, "#reconstruction img")))}
    assert distance["tuned"] < 0.8 * distance["e4e"], distance
    page.locator("#save").click()
    link = page.locator(f"#downloads a[download='{TUNED}_sefa-0+6_turn+1.5_pasted.png']")
    link.wait_for(timeout=30_000)
    assert fetch(link.get_attribute("href")).shape == (512, 896, 3)  # the pasted photo is the upload's size
    assert page.locator(f"#downloads a[download='{TUNED}_sefa-0+6_turn+1.5.tuned.safetensors']").count()
    sidecar = page.locator(f"#downloads a[download='{TUNED}_sefa-0+6_turn+1.5.align.json']")
    text = fetch_bytes(sidecar.get_attribute("href")).decode()
    assert json.loads(text)["source"] == "astronauts.png" and "source_absolute" not in text and "/tmp" not in text
    page.screenshot(path=str(shots / "editor.png"), full_page=True)
    page.locator("#reset").click()  # every slider back to 0: the reconstruction again
    command_is(page, "stylecli edit astronauts.png -d sefa:0 -s 0 --save-latent --paste-back --checkpoint tiny.pt "
               f"--tune {' '.join(TUNING)}")

    page.locator("#photo button[aria-label='Clear']").click()
    page.set_input_files("#photo input[type=file]", str(files["broken"]))
    status_has(page, "Error: broken.png:", log)
    page.screenshot(path=str(shots / "bad_upload.png"), full_page=True)
    assert answers(url)
    page.locator("#photo button[aria-label='Clear']").click()
    renamed = shots / "me (1)!.png"  # the web server's copy loses `(`, `)` and `!`: the page keeps the name
    renamed.write_bytes(files["photo"].read_bytes())
    page.set_input_files("#photo input[type=file]", str(renamed))  # and it still edits
    status_has(page, "me (1)!.png: 896x512", log)
    command_is(page, "stylecli edit 'me (1)!.png' -d sefa:0 -s 0 --save-latent --paste-back --checkpoint tiny.pt "
               f"--tune {' '.join(TUNING)}")
    page.get_by_text("Keep", exact=True).click()  # the README's GANSpace slider is there: Keep says what it holds
    page.wait_for_function("document.querySelector('#keep')?.innerText.includes('GANSpace sliders are left')",
                           timeout=10_000)
    assert outside == []


def rendered(work: Path) -> int:
    """How many sessions, photo previews and renders the server has numbered (its folders s1/u2, s1/r3, ...)."""
    return max((int(p.name[1:]) for p in work.glob("s*/*") if p.name[:1] in "ur" and p.name[1:].isdigit()), default=0)


def status_has(page, text: str, log: Path) -> None:
    try:
        page.wait_for_function(f"document.querySelector('#status').innerText.includes({text!r})", timeout=30_000)
    except Exception:
        raise AssertionError(f"status: {page.inner_text('#status')!r}; server log:\n{log.read_text()}") from None


def command_is(page, command: str) -> None:
    try:
        page.wait_for_function(f"document.querySelector('#command textarea').value === {command!r}", timeout=30_000)
    except Exception:
        raise AssertionError(f"command: {page.input_value('#command textarea')!r}") from None


def choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def eventually(check, seconds: float = 10.0) -> bool:
    """Whether `check()` comes true within `seconds` (an image being swapped may fail to load meanwhile)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return True
        except (OSError, ValueError):  # urllib's errors and Pillow's UnidentifiedImageError
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def image_of(page, selector: str, last: bool = False) -> np.ndarray:
    images = page.locator(selector)
    return fetch((images.last if last else images.first).get_attribute("src"))


def fetch(url: str) -> np.ndarray:
    return pixels(fetch_bytes(url))


def fetch_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_serve_on_a_taken_port_is_one_line_before_the_model_loads(files, monkeypatch):
    from helpers import invoke

    import stylecli.serve.server as server

    monkeypatch.setattr(server, "prepare", lambda *a, **k: pytest.fail("the model loaded before the port check"))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = invoke("serve", "--checkpoint", files["checkpoint"], "--port", port, "--no-browser")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert f"--port {port}" in result.stderr and f"--port {port + 1}" in result.stderr


@pytest.mark.slow
def test_sigterm_removes_the_servers_files(server, files, tmp_path):
    """Last (it stops the module's server): SIGTERM ends it as Ctrl-C does, and its working folder goes, with
    Gradio's copies of the uploads and outputs, which it keeps inside."""
    import signal

    from gradio_client import Client, handle_file

    url, log, proc, tmp = server
    client = Client(url, verbose=False, download_files=str(tmp_path))
    client.predict(photo=handle_file(str(files["photo"])), face=0, sefa_0=1.0, api_name="/edit")
    work = next(tmp.glob("stylecli-serve-*"))
    assert list((work / "gradio").rglob("astronauts.png")), "Gradio's copy of the upload is not in the server's folder"
    assert not (files["root"] / "gradio").exists()  # the GRADIO_TEMP_DIR the server was started with is not used
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert not work.exists() and not list(tmp.glob("stylecli-serve-*")), log.read_text()


@pytest.mark.slow
def test_photo_input_hands_on_the_name_the_file_had_on_the_users_machine(tmp_path):
    """The page's photo input keeps the upload's own name (the server's copy loses `! { } :`), through Gradio's
    public `preprocess` and `gr.FileData`: this fails if Gradio moves either."""
    photo = two_astronauts(tmp_path / "astronauts.png")
    code = ("import sys, gradio as gr; from stylecli.serve.app import _photo_file; "
            "c = _photo_file(gr, file_types=['image'], type='filepath'); "
            "v = c.preprocess(gr.FileData(path=sys.argv[1], orig_name='my {best}: photo!.png')); "
            "print(str(v)); print(v.orig_name)")
    (tmp_path / "gradio").mkdir()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-c", code, str(photo)], capture_output=True, text=True, check=True,
                         env=env).stdout.splitlines()
    assert out == [str(photo), "my {best}: photo!.png"]
