"""The e4e recipe on tiny models, on the CPU, in seconds."""

import json
from pathlib import Path

import pytest
import torch
from conftest import shifted_faces, tiny_model
from test_cli import invoke, records

from stylecli.models.latent_discriminator import LatentDiscriminator
from stylecli.training import losses
from stylecli.training.progressive import progressive_steps, stage_at
from stylecli.training.ranger import Ranger
from stylecli.training.trainer import LossNets, TrainConfig, Trainer, training_model

OPTS_KEYS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "e4e_opts_keys.txt"


@pytest.fixture
def train_folder(tmp_path, face_png):
    return shifted_faces(tmp_path / "train", face_png, 4, 9, "t")


def make_trainer(tmp_path, folder, **overrides):
    defaults = dict(data=str(folder), val_data=str(folder), out=str(tmp_path / "run"), steps=1000, batch_size=2,
                    lpips_lambda=0.0, id_lambda=0.0, progressive_start=2, progressive_step_every=2,
                    mean_latent_samples=256, save_every=1000, val_every=1000, image_every=1000, log_every=1,
                    d_reg_every=2, use_w_pool=True, w_pool_size=3)
    defaults.update(overrides)
    config = TrainConfig(**defaults)
    model = training_model(tiny_model().decoder, None, config.mean_latent_samples, seed=0, widths=(16, 16, 32, 32))
    return Trainer(config, model, LossNets(), torch.device("cpu"))


def test_progressive_schedule():
    steps = progressive_steps(20_000, 2_000, 18)
    assert steps[:3] == [0, 20_000, 22_000] and len(steps) == 18 and steps[-1] == 20_000 + 16 * 2_000
    assert [stage_at(s, steps) for s in (0, 19_999, 20_000, 21_999, 22_000, 10**6)] == [0, 0, 1, 1, 2, 17]
    assert stage_at(5, None) == 18


def test_only_active_offsets_are_nonzero(tmp_path, train_folder):
    trainer = make_trainer(tmp_path, train_folder)
    x = torch.stack([trainer.train_data[0]])
    for step, active in ((0, 0), (2, 1), (4, 2)):
        trainer.state.step = step
        trainer.encoder.progressive_stage = trainer.stage
        with torch.no_grad():
            codes = trainer.encoder(x)
        offsets = (codes - codes[:, :1]).abs().amax(dim=(0, 2))
        assert (offsets[1 : active + 1] > 0).all() and (offsets[active + 1 :] == 0).all()
        assert trainer.discriminated_dims() == list(range(active + 1))


def test_loss_terms_vanish_where_they_must_and_point_the_right_way():
    w = torch.randn(3, 1, 8).repeat(1, 6, 1)
    assert losses.delta_loss(w, 5).item() == 0  # pure W: no offsets
    codes = w.clone().requires_grad_(True)
    with torch.no_grad():
        codes[:, 2] += 1.0
    losses.delta_loss(codes, 5).backward()
    # The gradient pulls w_2 towards w_0 (along +offset) and w_0 towards w_2.
    assert (codes.grad[:, 2] > 0).all() and (codes.grad[:, 0] < 0).all() and codes.grad[:, 3:].abs().sum() == 0
    assert losses.delta_loss(codes.detach(), 1).item() == 0  # offset 2 is not active at stage 1

    ident = losses.FeatureSimilarityLoss(torch.nn.Conv2d(3, 4, 3), crop_face=True)
    y = torch.randn(2, 3, 256, 256)
    assert ident(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert ident(-y, y).item() > 0

    d = LatentDiscriminator(8)
    real = torch.randn(5, 8)
    # R1 is the squared gradient norm of D at the real codes: compare with autograd by hand.
    r = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(r).sum(), r)
    assert losses.r1_penalty(d, real).item() == pytest.approx(g.pow(2).sum(1).mean().item(), rel=1e-5)
    lin = torch.nn.Linear(8, 1)  # a linear D has a constant gradient: R1 = |weights|^2 anywhere
    assert losses.r1_penalty(lin, real).item() == pytest.approx(lin.weight.pow(2).sum().item(), rel=1e-5)
    # The encoder's adversarial loss falls as D scores its codes as more real.
    codes = torch.randn(4, 6, 8)
    low = losses.encoder_adversarial_loss(lambda w: torch.full((w.shape[0], 1), 5.0), codes, [0, 1])
    high = losses.encoder_adversarial_loss(lambda w: torch.full((w.shape[0], 1), -5.0), codes, [0, 1])
    assert low < high
    assert set(dict(d.named_parameters())) == {f"mlp.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}


def test_ranger_is_radam_plus_lookahead():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(10))
    q = torch.nn.Parameter(p.detach().clone())
    ranger, radam = Ranger([p], lr=0.1), torch.optim.RAdam([q], lr=0.1, betas=(0.95, 0.999), eps=1e-5)
    start = p.detach().clone()
    for step in range(6):
        for param, opt in ((p, ranger), (q, radam)):
            opt.zero_grad()
            (param**2).sum().backward()
            opt.step()
        if step < 5:
            assert torch.allclose(p, q)  # fast weights follow RAdam between syncs
    # At the 6th step the weights jump halfway back towards the slow copy (the starting point).
    torch.testing.assert_close(p.detach(), start + 0.5 * (q.detach() - start))


def test_training_lowers_the_reconstruction_loss(tmp_path, train_folder):
    trainer = make_trainer(tmp_path, train_folder, optimizer="adam", lr=3e-3, w_discriminator_lambda=0.0,
                           progressive_start=None, delta_norm_lambda=0.0)
    x = torch.stack([trainer.train_data[i] for i in range(4)])

    def recon_loss():
        with torch.no_grad():
            y = trainer.model.decoder(trainer.encoder(x) + trainer.model.latent_avg)
            return torch.nn.functional.mse_loss(torch.nn.functional.adaptive_avg_pool2d(y, 256), x).item()

    before = recon_loss()
    trainer.run(until=60)
    after = recon_loss()
    assert after < 0.5 * before, (before, after)


def test_resume_is_exact(tmp_path, train_folder):
    straight = make_trainer(tmp_path / "a", train_folder)
    straight.run(until=6)
    first = make_trainer(tmp_path / "b", train_folder)
    first.run(until=3)
    first.save(tmp_path / "mid.pt")
    resumed = make_trainer(tmp_path / "c", train_folder)
    from stylecli.checkpoint import read_checkpoint

    resumed.resume(read_checkpoint(tmp_path / "mid.pt"))
    assert resumed.state.step == 3
    resumed.run(until=6)
    for (name, a), (_, b) in zip(straight.encoder.state_dict().items(), resumed.encoder.state_dict().items()):
        assert torch.equal(a, b), name
    for (name, a), (_, b) in zip(straight.discriminator.state_dict().items(),
                                 resumed.discriminator.state_dict().items()):
        assert torch.equal(a, b), name


def test_checkpoint_is_official_and_loads_in_invert(tmp_path, train_folder, face_png):
    trainer = make_trainer(tmp_path, train_folder, steps=3, save_every=3, val_every=3, image_every=3)
    trainer.run()
    run = Path(trainer.config.out)
    assert (run / "latest.pt").is_file() and (run / "best.pt").is_file()
    assert (run / "images" / "train_0000003.png").is_file() and (run / "images" / "val_0000003.png").is_file()
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3] and any("val_loss" in r for r in rows)
    assert {"l2", "delta", "adversarial", "discriminator", "r1"} <= set().union(*rows)
    ckpt = torch.load(run / "latest.pt", weights_only=True)
    assert set(ckpt) >= {"state_dict", "opts", "latent_avg"}
    if OPTS_KEYS.exists():
        official = {line.split("\t")[0] for line in OPTS_KEYS.read_text().splitlines() if not line.startswith("#")}
        assert official <= set(ckpt["opts"])
    assert all(k.startswith(("encoder.", "decoder.")) for k in ckpt["state_dict"])
    result = invoke("invert", face_png, "--no-align", "--checkpoint", run / "best.pt", "-o", tmp_path / "inv",
                    "--json")
    assert result.exit_code == 0, result.stderr and records(result)[0]["ok"]


def test_train_command_end_to_end_and_resume(tmp_path, train_folder):
    from test_metrics import tiny_arcface

    g = tmp_path / "g.pt"
    torch.save({"g_ema": tiny_model().decoder.state_dict()}, g)
    arc = tmp_path / "arcface_tiny.pth"  # the encoder starts from these IR-SE weights (and their widths)
    torch.save(tiny_arcface().state_dict(), arc)
    out = tmp_path / "run"
    args = ["train", "--data", train_folder, "--generator", g, "--out", out, "--steps", "4", "--batch-size", "2",
            "--lpips-lambda", "0", "--id-lambda", "0", "--encoder-init", arc, "--mean-latent-samples", "64",
            "--save-every", "2", "--progressive-start", "1", "--progressive-step-every", "1", "-q"]
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert ckpt["global_step"] == 4 and ckpt["state_dict"]["encoder.body.0.res_layer.1.weight"].shape[0] == 16
    result = invoke("train", "--resume", out, "--steps", "6", "-q")
    assert result.exit_code == 0, result.stderr
    assert torch.load(out / "latest.pt", weights_only=True)["global_step"] == 6
    missing = invoke("train", "--data", train_folder, "--generator", "stylegan2_ffhq", "--out", tmp_path / "x",
                     "--encoder-init", "none", "--id-lambda", "0", "--lpips-lambda", "0")
    assert missing.exit_code == 1 and "stylecli weights import stylegan2_ffhq PATH" in missing.stderr
    assert invoke("train", "--out", out).exit_code == 2  # no --data, no --resume


def test_two_processes_under_torchrun(tmp_path, train_folder):
    """torch.distributed on the CPU (Gloo): the same command, two ranks, rank 0 writes the checkpoint."""
    import os
    import shutil
    import subprocess
    import sys

    from test_metrics import tiny_arcface

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    torch.save({"g_ema": tiny_model().decoder.state_dict()}, tmp_path / "g.pt")
    torch.save(tiny_arcface().state_dict(), tmp_path / "arc.pth")
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "stylecli", "train", "--data", str(train_folder), "--generator",
           str(tmp_path / "g.pt"), "--out", str(tmp_path / "run"), "--steps", "3", "--batch-size", "1",
           "--lpips-lambda", "0", "--id-lambda", "0", "--encoder-init", str(tmp_path / "arc.pth"),
           "--mean-latent-samples", "64", "--save-every", "3", "--d-reg-every", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "latest.pt", weights_only=True)["global_step"] == 3
