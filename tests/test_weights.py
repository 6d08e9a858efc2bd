"""The registry, Hub-cache resolution (a cache folder built here), URL downloads with resume, imports."""

import hashlib
import http.server
import sys
import threading

import pytest
from helpers import build_hub_cache, write_registry

from stylecli.errors import StyleCliError
from stylecli.registry import weights

REQUIRED = ["e4e_ffhq", "e4e_cars", "e4e_horse", "e4e_church", "psp_ffhq", "stylegan2_ffhq", "dlib_landmarks68",
            "arcface_ir_se50", "age", "smile", "pose", "ffhq_pca", "cars_pca"]


def test_bundled_registry_is_complete_and_well_formed():
    reg = weights.load_registry(weights.REGISTRY_FILE)
    assert set(REQUIRED) <= set(reg)
    for e in reg.values():
        assert e.file and e.what and e.license and e.sources, e.name
        if e.sha256 is not None:
            assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
    assert reg["e4e_ffhq"].sha256 == "2ace1d9a8c05c10a399bcd500b8dda118f759ff1aac89dbdab7435f2136a0999"
    assert reg["e4e_ffhq"].size == 1_201_649_680
    assert reg["e4e_cars"].manual_only and not reg["e4e_ffhq"].manual_only
    assert "99ea50578695d2e8a1cf7259d8ee89b23eea942b" in reg["age"].sources[0]["url"]


def entry_toml(name, sha, source, file="model.bin"):
    return f'[{name}]\nwhat = "test"\nfile = "{file}"\nsha256 = "{sha}"\nlicense = "test"\nsources = [{source}]\n'


def test_resolves_from_hub_cache_and_checks_sha(tmp_path, monkeypatch, isolated_cache):
    content = b"pretend weights"
    snap = build_hub_cache(isolated_cache / "hf", "org/repo", "model.bin", content)
    sha = hashlib.sha256(content).hexdigest()
    write_registry(tmp_path, monkeypatch, entry_toml("m", sha, '{ hf = "org/repo", path = "model.bin" }')
                   + entry_toml("bad", "0" * 64, '{ hf = "org/repo", path = "model.bin" }'))
    assert weights.resolve("m").resolve() == snap.resolve()
    assert weights.status(weights.get_entry("m"))["present"]
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.resolve("bad")


def test_offline_miss_names_the_file_and_the_fix(tmp_path, monkeypatch):
    write_registry(tmp_path, monkeypatch, entry_toml("m", "0" * 64, '{ hf = "org/absent", path = "model.bin" }')
                   + entry_toml("d", "0" * 64, '{ manual = "https://example.org/d" }'))
    with pytest.raises(weights.WeightsError) as err:
        weights.resolve("m")
    msg = str(err.value)
    assert "model.bin" in msg and "org/absent" in msg and "stylecli weights import m PATH" in msg
    with pytest.raises(weights.WeightsError, match="cannot be downloaded automatically.*example.org"):
        weights.resolve("d")
    with pytest.raises(weights.WeightsError, match="unknown weights name 'mm'.*did you mean m"):
        weights.resolve("mm")


def test_import_checks_hash_and_installs(tmp_path, monkeypatch):
    good = tmp_path / "dl.bin"
    good.write_bytes(b"abc")
    sha = hashlib.sha256(b"abc").hexdigest()
    write_registry(tmp_path, monkeypatch, entry_toml("m", sha, '{ manual = "https://example.org" }'))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"abd")
    with pytest.raises(weights.WeightsError, match="nothing was installed"):
        weights.import_file("m", bad)
    assert not weights.local_copy(weights.get_entry("m")).exists()
    dest = weights.import_file("m", good)
    assert dest.read_bytes() == b"abc"
    assert weights.resolve("m") == dest
    dest.write_bytes(b"tampered")  # a changed file is re-hashed (size/mtime changed) and refused
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.resolve("m")


def test_embedded_file_found_without_importing_the_package(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "fake_models_pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('importing this package is broken')\n")
    (pkg / "models" / "lm.dat").write_bytes(b"landmarks")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sha = hashlib.sha256(b"landmarks").hexdigest()
    body = entry_toml("lm", sha, '{ manual = "x" }', "lm.dat") + 'embedded = "fake_models_pkg/models/lm.dat"\n'
    write_registry(tmp_path, monkeypatch, body)
    assert weights.resolve("lm") == pkg / "models" / "lm.dat"
    assert "fake_models_pkg" not in sys.modules


def test_real_dlib_landmarks_entry_uses_face_recognition_models():
    pytest.importorskip("dlib")
    entry = weights.get_entry("dlib_landmarks68")
    path = weights.embedded_path(entry)
    if path is None:
        pytest.skip("face-recognition-models is not installed")
    assert weights.resolve("dlib_landmarks68") == path


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests: list = []

    def do_GET(self):  # noqa: N802
        RangeHandler.requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(self.payload):  # as real servers do: nothing left to send
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(self.payload)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_download_resumes_and_verifies(tmp_path, monkeypatch, http_server):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    payload = bytes(range(256)) * 4000
    RangeHandler.payload, RangeHandler.requests = payload, []
    sha = hashlib.sha256(payload).hexdigest()
    write_registry(tmp_path, monkeypatch, entry_toml("u", sha, f'{{ url = "{http_server}/u.bin" }}', "u.bin")
                   + entry_toml("v", "f" * 64, f'{{ url = "{http_server}/v.bin" }}', "v.bin"))
    entry = weights.get_entry("u")
    part = weights.local_copy(entry).with_name("u.bin.download")
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[:1000])  # an interrupted earlier download
    path = weights.resolve("u")
    assert path.read_bytes() == payload and not part.exists()
    assert RangeHandler.requests == ["bytes=1000-"]
    with pytest.raises(StyleCliError, match="sha256 does not match.*discarded"):
        weights.resolve("v")
    assert not weights.local_copy(weights.get_entry("v")).exists()


PAYLOAD = bytes(range(256)) * 4000


@pytest.mark.parametrize("partial,with_size,expected_requests", [
    (PAYLOAD, True, []),  # killed after the last byte, before the rename: finished without a request
    (PAYLOAD, False, []),  # the same, with no size in the registry: its sha256 says it is complete
    (b"x" * len(PAYLOAD), True, [None]),  # full length but wrong: started over
    (b"x" * (len(PAYLOAD) + 5), False, [f"bytes={len(PAYLOAD) + 5}-", None]),  # too long: 416, started over
    (b"x" * 1000, True, ["bytes=1000-", None]),  # a wrong prefix: resumed, hash fails, fetched whole once more
], ids=["complete", "complete-no-size", "complete-wrong", "too-long-416", "wrong-prefix"])
def test_url_download_checks_an_earlier_partial(tmp_path, monkeypatch, http_server, partial, with_size,
                                                 expected_requests):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    RangeHandler.payload, RangeHandler.requests = PAYLOAD, []
    body = entry_toml("u", hashlib.sha256(PAYLOAD).hexdigest(), f'{{ url = "{http_server}/u.bin" }}', "u.bin")
    write_registry(tmp_path, monkeypatch, body + (f"size = {len(PAYLOAD)}\n" if with_size else ""))
    part = weights.local_copy(weights.get_entry("u")).with_name("u.bin.download")
    part.parent.mkdir(parents=True)
    part.write_bytes(partial)
    path = weights.resolve("u")
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert RangeHandler.requests == expected_requests


def test_failed_download_says_one_line_per_source_and_no_retry_log(tmp_path, monkeypatch, capfd):
    """A new user without network: each source is tried once and reported in one line; huggingface_hub
    neither retries (its waits go up to 8 s each) nor logs."""
    import socket

    import huggingface_hub.constants
    import huggingface_hub.utils._http

    with socket.socket() as sock:  # a port nothing listens on: connections are refused at once
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", dead)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        dead + "/{repo_id}/resolve/{revision}/{filename}")
    waits = []
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", waits.append)
    sources = f'{{ hf = "org/a", path = "m.bin" }}, {{ hf = "org/b", path = "m.bin" }}, {{ url = "{dead}/m.bin" }}'
    write_registry(tmp_path, monkeypatch, entry_toml("m", "0" * 64, sources, "m.bin"))
    capfd.readouterr()
    with pytest.raises(weights.WeightsError) as err:
        weights.resolve("m")
    lines = str(err.value).splitlines()
    assert "stylecli weights import m PATH" in lines[0]
    assert len(lines) == 4, lines
    for line, source in zip(lines[1:], ("hf://org/a/m.bin", "hf://org/b/m.bin", f"{dead}/m.bin")):
        assert line.startswith(f"  tried {source}: ") and len(line) < 300, line
        assert "refused" in line.lower(), line  # the local dead port, never the real Hub
    assert waits == [], "huggingface_hub retried"
    out, errout = capfd.readouterr()
    assert out == "" and errout == "", errout


def test_complete_partial_is_finished_when_offline(tmp_path, monkeypatch, http_server):
    """HF_HUB_OFFLINE=1 stops requests, not a rename: a verified complete .download needs none."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    RangeHandler.payload, RangeHandler.requests = PAYLOAD, []
    sources = f'{{ hf = "org/absent", path = "u.bin" }}, {{ url = "{http_server}/u.bin" }}'
    write_registry(tmp_path, monkeypatch, entry_toml("u", hashlib.sha256(PAYLOAD).hexdigest(), sources, "u.bin"))
    part = weights.local_copy(weights.get_entry("u")).with_name("u.bin.download")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    assert weights.resolve("u").read_bytes() == PAYLOAD and not part.exists()
    assert RangeHandler.requests == []


def fake_hub(monkeypatch, tmp_path, content: bytes) -> list:
    """huggingface_hub's metadata check and download, answering with `content` (the calls are recorded)."""
    import huggingface_hub

    calls = []

    def download(repo, filename, revision=None, cache_dir=None):
        calls.append(repo)
        path = tmp_path / "hub-download" / repo / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return str(path)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return calls


def test_a_file_with_the_wrong_hash_moves_on_to_the_next_source_from_the_hub_or_a_url(tmp_path, monkeypatch,
                                                                                      http_server):
    RangeHandler.payload, RangeHandler.requests = PAYLOAD, []
    calls = fake_hub(monkeypatch, tmp_path, b"a different version")
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    hub, url = '{ hf = "org/a", path = "u.bin" }', f'{{ url = "{http_server}/u.bin" }}'
    write_registry(tmp_path, monkeypatch, entry_toml("u", sha, f"{hub}, {url}", "u.bin")
                   + entry_toml("v", sha, f'{url}, {hub}', "u.bin"))
    assert weights.resolve("u").read_bytes() == PAYLOAD  # the Hub's file fails its check; the URL is tried
    assert calls == ["org/a"] and RangeHandler.requests == [None]
    RangeHandler.payload = b"not it"
    with pytest.raises(weights.WeightsError) as err:  # the URL's file fails its check; the Hub is tried
        weights.resolve("v")
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and calls == ["org/a", "org/a"], lines
    assert lines[1] == f"  tried {http_server}/u.bin: the downloaded file's sha256 does not match the registry; " \
                       "it was discarded"
    assert lines[2].startswith("  tried hf://org/a/u.bin: ") and "does not match" in lines[2]


class HeadHandler(http.server.BaseHTTPRequestHandler):
    """A Hub answering metadata requests with the statuses queued in `answers`."""

    answers: list = []
    seen: list = []

    def do_HEAD(self):  # noqa: N802
        status = self.answers.pop(0)
        HeadHandler.seen.append(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("answers,retried", [
    ([503, 429, 404], 2),  # transient twice, then a real answer: asked three times
    ([502, 500, 503], 2),  # transient every time: three tries, then this source fails
    ([404], 0),  # a definite answer: no retry
])
def test_hub_metadata_check_retries_only_transient_failures(tmp_path, monkeypatch, answers, retried):
    import huggingface_hub.constants

    server = http.server.HTTPServer(("127.0.0.1", 0), HeadHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    hub = f"http://127.0.0.1:{server.server_address[1]}"
    HeadHandler.answers, HeadHandler.seen = list(answers), []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        hub + "/{repo_id}/resolve/{revision}/{filename}")
    waits = []
    monkeypatch.setattr(weights.time, "sleep", waits.append)  # also huggingface_hub's own waits
    write_registry(tmp_path, monkeypatch, entry_toml("m", "0" * 64, '{ hf = "org/a", path = "m.bin" }', "m.bin"))
    try:
        with pytest.raises(weights.WeightsError) as err:
            weights.resolve("m")
    finally:
        server.shutdown()
        server.server_close()
    assert HeadHandler.seen == answers
    assert waits == list(weights.HUB_RETRY_WAITS[:retried])
    assert str(answers[-1]) in str(err.value).splitlines()[1]


def test_transient_failures():
    import httpx

    assert weights._transient(httpx.ReadTimeout("slow")) and weights._transient(httpx.ConnectTimeout("slow"))
    assert not weights._transient(httpx.ConnectError("[Errno 111] Connection refused"))
    assert not weights._transient(httpx.ConnectError("[Errno -2] Name or service not known"))
    from huggingface_hub.errors import OfflineModeIsEnabled

    assert not weights._transient(OfflineModeIsEnabled("offline"))


def test_quieting_the_hub_log_from_overlapping_downloads_restores_its_level():
    import logging

    log = logging.getLogger("huggingface_hub")
    before = log.level
    first, second = weights._quiet_hub_log(), weights._quiet_hub_log()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert log.level == logging.ERROR, "the other download's retries would be logged"
    second.__exit__(None, None, None)
    assert log.level == before
