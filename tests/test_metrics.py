"""Metrics and `stylecli evaluate` on tiny models and real images."""

import csv
import hashlib
import json

import pytest
import torch
import torch.nn.functional as F
from helpers import invoke, tiny_arcface
from skimage import data

from stylecli.editing.interfacegan import DirectionEdit
from stylecli.evaluation import driver as evaluation
from stylecli.evaluation.metrics import identity_similarity, l2, lec_distances, msssim, trim_outliers
from stylecli.registry import networks as metric_nets

ASTRO = torch.from_numpy(data.astronaut()[:256, 128:384].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def blur(x, sigma):
    r = int(3 * sigma)
    k = torch.exp(-(torch.arange(-r, r + 1.0) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(x)
    x = F.conv2d(F.pad(x, [r, r, 0, 0], mode="reflect"), k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(F.pad(x, [0, 0, r, r], mode="reflect"), k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


def test_identical_images_are_perfect_and_blur_orders():
    assert l2(ASTRO, ASTRO).item() == 0
    assert msssim(ASTRO, ASTRO).item() == pytest.approx(1.0, abs=1e-6)
    b1, b3 = blur(ASTRO, 1.0), blur(ASTRO, 3.0)
    assert 0 < l2(ASTRO, b1).item() < l2(ASTRO, b3).item()
    assert 1 > msssim(ASTRO, b1).item() > msssim(ASTRO, b3).item()


def test_lpips_from_the_lpips_package():
    lpips = pytest.importorskip("lpips")
    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)  # the real LPIPS head; random AlexNet (offline)
    assert net(ASTRO, ASTRO).item() == pytest.approx(0.0, abs=1e-6)
    assert net(ASTRO, blur(ASTRO, 3.0)).item() > 0


class LookupModel:
    """A generator/encoder pair that recover each other's codes exactly: the image holds the code's values."""

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def synthesize(self, codes):  # [B, 8, 32] -> [B, 3, 256, 256]
        img = codes.reshape(-1, 1, 16, 16)
        return img.repeat_interleave(16, dim=2).repeat_interleave(16, dim=3).expand(-1, 3, -1, -1)

    def encode(self, images):
        codes = images[:, 0, ::16, ::16].reshape(-1, 8, 32)
        return codes + self.noise * torch.randn_like(codes) if self.noise else codes


def test_lec_is_zero_for_an_exact_encoder_and_positive_otherwise():
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(-64, 64, (4, 8, 32), generator=gen) / 8.0  # dyadic values: float sums are exact
    images = LookupModel().synthesize(codes)
    edit = DirectionEdit(label="d", direction=torch.randint(-4, 4, (1, 32), generator=gen) / 2.0)
    exact = lec_distances(LookupModel(), images, lambda c: edit.apply(c, 3.0), lambda c: edit.apply(c, -3.0))
    assert torch.equal(exact, torch.zeros(4))
    noisy = lec_distances(LookupModel(0.1), images, lambda c: edit.apply(c, 3.0), lambda c: edit.apply(c, -3.0))
    assert (noisy > 0).all()


def test_percentile_trimming_matches_hand_computation():
    values = list(range(1, 201))  # 1..200
    kept = trim_outliers(values)
    # Sorted positions 0..199: the 1st percentile sits at 0.01 * 199 = 1.99 -> lower -> position 1 (value 2);
    # the 99th at 0.99 * 199 = 197.01 -> higher -> position 198 (value 199). 1 and 200 are dropped.
    assert kept.min() == 2 and kept.max() == 199 and kept.size == 198
    assert trim_outliers([5.0, 5.0, 5.0]).tolist() == [5.0, 5.0, 5.0]


def test_identity_similarity_and_arcface_loading(tmp_path):
    net = tiny_arcface()
    assert identity_similarity(net, ASTRO, ASTRO).item() == pytest.approx(1.0, abs=1e-5)
    torch.save(net.state_dict(), tmp_path / "arc.pth")
    loaded = evaluation.arcface_model(torch.device("cpu"), tmp_path / "arc.pth")
    assert torch.allclose(loaded.embed_face(ASTRO), net.embed_face(ASTRO), atol=1e-6)
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(metric_nets.MetricNetError, match="not an ArcFace"):
        metric_nets.arcface_model(torch.device("cpu"), tmp_path / "bad.pth")


@pytest.fixture
def eval_folder(tmp_path, face_png):
    from conftest import shifted_faces

    return shifted_faces(tmp_path / "test_faces", face_png, 5, 11, "f", axis=0)


@pytest.mark.slow
def test_evaluate_command_compares_checkpoints(tmp_path, eval_folder, tiny_checkpoint, monkeypatch):
    from conftest import tiny_config, tiny_model

    from stylecli.encoders.formats.e4e import default_opts, save_checkpoint

    other = tmp_path / "other.pt"
    save_checkpoint(tiny_model(seed=9), other, default_opts(tiny_config()))
    # Identity network through the registry (a tiny ArcFace installed with `weights import`).
    arc = tmp_path / "model_ir_se50.pth"
    torch.save(tiny_arcface().state_dict(), arc)
    sha = hashlib.sha256(arc.read_bytes()).hexdigest()
    reg = tmp_path / "weights.toml"
    reg.write_text(f'[arcface_ir_se50]\nwhat = "t"\nfile = "model_ir_se50.pth"\nsha256 = "{sha}"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    lpips = pytest.importorskip("lpips")
    monkeypatch.setattr(evaluation, "lpips_model", lambda dev: (
        lambda net: (lambda a, b: net(a, b).flatten()))(lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)))

    args = ("evaluate", eval_folder, "--checkpoint", tiny_checkpoint, "--checkpoint", other, "--json",
            "--lec-edit", "sefa:0:2", "--per-image", "--csv", tmp_path / "r.csv")
    result = invoke(*args)
    assert result.exit_code == 2 and "weights import arcface_ir_se50" in result.stderr  # not installed yet: set-up
    assert invoke("weights", "import", "arcface_ir_se50", arc).exit_code == 0
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["images"] == 5 and [r["checkpoint"] for r in doc["results"]] == [str(tiny_checkpoint), str(other)]
    for r in doc["results"]:
        assert set(r["metrics"]) == {"l2", "lpips", "msssim", "id", "lec"}
        assert r["metrics"]["l2"]["n"] == 5 and r["metrics"]["l2"]["mean"] > 0
        assert -1 <= r["metrics"]["id"]["mean"] <= 1 and r["metrics"]["lec"]["mean"] > 0
        assert len(r["per_image"]) == 5 and r["speed"]["encode_s_per_image"] > 0
    assert doc["results"][0]["metrics"]["l2"]["mean"] != doc["results"][1]["metrics"]["l2"]["mean"]
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]["l2_mean"]) == pytest.approx(doc["results"][0]["metrics"]["l2"]["mean"])
    assert "lec" in result.stderr  # the table


def test_evaluate_errors(tmp_path, eval_folder, tiny_checkpoint):
    assert invoke("evaluate", eval_folder, "--checkpoint", tiny_checkpoint, "--metrics", "l2,fid").exit_code == 2
    r = invoke("evaluate", eval_folder, "--checkpoint", tiny_checkpoint, "--metrics", "lec", "--lec-edit",
               "ganspace:smile")
    assert r.exit_code == 2 and "stylecli: error:" in r.stderr
    (eval_folder / "broken.png").write_bytes(b"nope")
    r = invoke("evaluate", eval_folder, "--checkpoint", tiny_checkpoint, "--metrics", "l2,msssim", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["images"] == 5 and "broken.png" in r.stderr


def test_moco_loader_takes_the_query_encoder(tmp_path):
    import torchvision

    net = torchvision.models.resnet50()
    state = {f"module.encoder_q.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["module.encoder_q.fc.0.weight"] = torch.zeros(2048, 2048)  # MoCo-v2's MLP head: dropped
    state["module.encoder_k.conv1.weight"] = torch.zeros(64, 3, 7, 7)  # the key encoder: ignored
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state}, tmp_path / "moco.pt")
    feats = metric_nets.moco_model(torch.device("cpu"), tmp_path / "moco.pt")
    x = torch.randn(1, 3, 224, 224)
    net.eval()
    with torch.no_grad():
        expected = torch.flatten(torch.nn.Sequential(*list(net.children())[:-1])(x), 1)
        torch.testing.assert_close(feats(x).flatten(1), expected)
    torch.save({"state_dict": {"module.encoder_q.conv1.weight": torch.zeros(64, 3, 7, 7)}}, tmp_path / "bad.pt")
    with pytest.raises(metric_nets.MetricNetError, match="not a MoCo"):
        metric_nets.moco_model(torch.device("cpu"), tmp_path / "bad.pt")
