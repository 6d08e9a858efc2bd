"""First downloads: the size said before the bytes come, a progress bar on stderr, nothing on stdout; LPIPS's
AlexNet from the registry (pinned by torchvision's published sha256 prefix, its whole sha256 recorded)."""

import hashlib
import http.server
import json
import threading
import warnings
from types import SimpleNamespace

import pytest
import torch
from helpers import invoke, write_registry

from stylecli.registry import weights


class Handler(http.server.BaseHTTPRequestHandler):
    payloads: dict = {}
    requests: list = []

    def do_GET(self):  # noqa: N802
        Handler.requests.append(self.path)
        body = self.payloads[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    Handler.payloads, Handler.requests = {}, []
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def url_entry(name, file, url, pin, size=None):
    return (f'[{name}]\nwhat = "t"\nfile = "{file}"\n{pin}\nlicense = "t"\nsources = [{{ url = "{url}" }}]\n'
            + (f"size = {size}\n" if size else ""))


def test_a_first_download_says_its_size_then_shows_a_bar_on_stderr_only(tmp_path, monkeypatch, server, capfd):
    payload = bytes(range(256)) * 8000  # 2 MB
    Handler.payloads["/m.bin"] = payload
    sha = hashlib.sha256(payload).hexdigest()
    write_registry(tmp_path, monkeypatch, url_entry("m", "m.bin", f"{server}/m.bin", f'sha256 = "{sha}"', len(payload)))
    capfd.readouterr()
    assert weights.resolve("m").read_bytes() == payload
    out, err = capfd.readouterr()
    assert out == ""
    assert f"stylecli: note: downloading m (m.bin, 2 MB) from {server}/m.bin" in err
    assert err.index("downloading m") < err.index("m.bin:"), err  # the bar (tqdm: "m.bin: 100%|...") after
    weights.resolve("m")  # the second use: no download, nothing said
    assert capfd.readouterr() == ("", "") and Handler.requests == ["/m.bin"]


def test_a_hub_download_says_its_size_from_the_registry_or_the_hub(tmp_path, monkeypatch, capfd):
    import huggingface_hub

    def download(repo, filename, revision=None, cache_dir=None):
        path = tmp_path / "dl" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 3000)
        return str(path)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url: SimpleNamespace(size=3000))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    sha = hashlib.sha256(b"x" * 3000).hexdigest()
    write_registry(tmp_path, monkeypatch, f'[h]\nwhat = "t"\nfile = "h.bin"\nsha256 = "{sha}"\nlicense = "t"\n'
                   'sources = [{ hf = "org/r", path = "h.bin" }]\n')
    capfd.readouterr()
    weights.resolve("h")
    out, err = capfd.readouterr()
    assert out == "" and "downloading h (h.bin, 3 kB) from hf://org/r/h.bin" in err


def test_a_prefix_pinned_download_is_checked_and_its_whole_sha256_recorded(tmp_path, monkeypatch, server):
    good, bad = b"published file" * 100, b"another file" * 100
    Handler.payloads.update({"/good.pth": good, "/bad.pth": bad})
    sha = hashlib.sha256(good).hexdigest()
    pin = f'sha256_prefix = "{sha[:8]}"'
    write_registry(tmp_path, monkeypatch, url_entry("g", "good.pth", f"{server}/good.pth", pin)
                   + url_entry("b", "bad.pth", f"{server}/bad.pth", pin))
    path = weights.resolve("g")
    entry = weights.get_entry("g")
    assert path == weights.local_copy(entry) and weights.recorded_sha256(entry) == sha
    with pytest.raises(weights.WeightsError, match="sha256 does not match"):
        weights.resolve("b")
    assert not weights.local_copy(weights.get_entry("b")).exists()
    path.write_bytes(good[:-1] + b"!")  # changed after the download: refused at use
    with pytest.raises(weights.WeightsError, match="changed since|does not start with"):
        weights.resolve("g")
    with pytest.raises(weights.WeightsError, match="does not start with"):  # an import is checked the same way
        weights.import_file("g", tmp_path / "weights.toml")


def test_the_bundled_registry_pins_torchvisions_alexnet():
    entry = weights.load_registry(weights.REGISTRY_FILE)["lpips_alexnet"]
    assert entry.file == "alexnet-owt-7be5be79.pth" and entry.sha256_prefix == "7be5be79"
    assert entry.sources == ({"url": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"},)


def alexnet_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = torchvision.models.alexnet().state_dict()
    path = tmp_path / "alexnet-owt-test.pth"
    torch.save(state, path)
    return path, state


def served_alexnet(tmp_path, monkeypatch, server):
    """A small AlexNet-format file served over http as the registry's lpips_alexnet (pinned by its prefix)."""
    path, state = alexnet_file(tmp_path)
    Handler.payloads["/alex.pth"] = path.read_bytes()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    write_registry(tmp_path, monkeypatch, url_entry("lpips_alexnet", "alex.pth", f"{server}/alex.pth",
                                                    f'sha256_prefix = "{sha[:8]}"'))
    return path, state


@pytest.mark.slow
def test_lpips_reads_alexnet_from_the_registry_never_through_torchvision(tmp_path, monkeypatch, server):
    pytest.importorskip("lpips")
    from stylecli.registry.networks import lpips_model
    from stylecli.training.setup import lpips_alex

    path, state = served_alexnet(tmp_path, monkeypatch, server)

    def no_download(*args, **kwargs):
        raise AssertionError("torchvision downloaded")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = lpips_model(torch.device("cpu"))
    assert [str(w.message) for w in caught] == []  # torchvision's `pretrained` deprecation is not said
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    expected = lpips_alex(torch.device("cpu"), state)(a, b)  # the training module's own loading of the same file
    assert torch.allclose(dist(a, b), expected) and Handler.requests == ["/alex.pth"]
    other = tmp_path / "not_alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, other)
    from stylecli.registry.networks import MetricNetError

    with pytest.raises(MetricNetError, match="not torchvision's AlexNet"):
        lpips_model(torch.device("cpu"), other)


@pytest.mark.slow
def test_evaluate_json_prints_only_json_on_stdout_during_a_first_download(tmp_path, monkeypatch, server,
                                                                         tiny_checkpoint, face_png):
    pytest.importorskip("lpips")
    served_alexnet(tmp_path, monkeypatch, server)
    result = invoke("evaluate", face_png, "--checkpoint", tiny_checkpoint, "--metrics", "l2,lpips", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert doc["results"][0]["metrics"]["lpips"]["n"] == 1
    assert "stylecli: note: downloading lpips_alexnet" in result.stderr
    assert "Downloading" not in result.stderr and "pretrained" not in result.stderr


def test_invert_json_prints_only_records_on_stdout_during_a_first_model_download(tmp_path, monkeypatch, server,
                                                                                tiny_checkpoint, face_png):
    Handler.payloads["/tiny.pt"] = tiny_checkpoint.read_bytes()
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    write_registry(tmp_path, monkeypatch, url_entry("tiny", "tiny.pt", f"{server}/tiny.pt", f'sha256 = "{sha}"')
                   + 'kind = "checkpoint"\n')
    result = invoke("invert", face_png, "--no-align", "--model", "tiny", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["ok"]
    assert "stylecli: note: downloading tiny (tiny.pt," in result.stderr and Handler.requests == ["/tiny.pt"]


def test_quiet_silences_the_download_note_and_bar(tmp_path, monkeypatch, server, tiny_checkpoint, face_png, capfd):
    from stylecli.registry import weights

    Handler.payloads["/tiny.pt"] = tiny_checkpoint.read_bytes()
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    write_registry(tmp_path, monkeypatch, url_entry("tiny", "tiny.pt", f"{server}/tiny.pt", f'sha256 = "{sha}"')
                   + 'kind = "checkpoint"\n')
    try:
        result = invoke("invert", face_png, "--no-align", "--model", "tiny", "-o", tmp_path / "out", "-q")
    finally:
        weights.quiet_downloads(False)
    assert result.exit_code == 0, result.stderr
    assert Handler.requests == ["/tiny.pt"] and result.stderr == "" and "tiny.pt" not in capfd.readouterr().err


def test_weights_pull_defaults_and_all(tmp_path, monkeypatch, server):
    files = {name: name.encode() * 50 for name in ("e4e_ffhq", "age", "lpips_alexnet", "extra")}
    body = ""
    for name, content in files.items():
        Handler.payloads[f"/{name}"] = content
        body += url_entry(name, f"{name}.bin", f"{server}/{name}", f'sha256 = "{hashlib.sha256(content).hexdigest()}"')
    body += '[by_hand]\nwhat = "t"\nfile = "h.bin"\nlicense = "t"\nsources = [{ manual = "https://example.org/h" }]\n'
    write_registry(tmp_path, monkeypatch, body)
    assert weights.default_pull_names() == ["e4e_ffhq", "age", "lpips_alexnet"]
    result = invoke("weights", "pull")
    assert result.exit_code == 0, result.stderr
    assert sorted(Handler.requests) == ["/age", "/e4e_ffhq", "/lpips_alexnet"] and result.stdout == ""
    result = invoke("weights", "pull", "--all")
    assert result.exit_code == 0, result.stderr  # the manual-only entry is listed, not failed
    assert Handler.requests[3:] == ["/extra"]
    assert "by_hand (h.bin) cannot be downloaded automatically: get it from https://example.org/h" in result.stderr
    assert "stylecli weights import by_hand PATH" in result.stderr
    assert invoke("weights", "pull", "age", "--all").exit_code == 2
    assert invoke("weights", "pull", "by_hand").exit_code != 0  # named, it is still an error
