"""The e4e recipe on tiny models, on the CPU, in seconds."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shifted_faces, tiny_model
from helpers import invoke, records, reference_dir

from stylecli.models.latent_discriminator import LatentDiscriminator
from stylecli.training import losses
from stylecli.training.config import TrainConfig, resume_conflicts
from stylecli.training.data import EpochBatches, ImageFolder, Position, batch_loader
from stylecli.training.draws import RandomDraws
from stylecli.training.pool import LatentPool
from stylecli.training.progressive import progressive_steps, stage_at
from stylecli.training.ranger import Ranger
from stylecli.training.setup import training_model
from stylecli.training.trainer import LossNets, Trainer


@pytest.fixture
def train_folder(tmp_path, face_png):
    return shifted_faces(tmp_path / "train", face_png, 5, 9, "t")


def make_trainer(tmp_path, folder, **overrides):
    defaults = dict(data=str(folder), val_data=str(folder), out=str(tmp_path / "run"), steps=1000, batch_size=2,
                    lpips_lambda=0.0, id_lambda=0.0, progressive_start=2, progressive_step_every=2,
                    mean_latent_samples=256, save_every=1000, val_every=1000, image_every=1000, log_every=1,
                    d_reg_every=2, use_w_pool=True, w_pool_size=3, workers=0)
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
    assert sum(losses.delta_losses(w, 5)).item() == 0  # pure W: no offsets
    codes = w.clone().requires_grad_(True)
    with torch.no_grad():
        codes[:, 2] += 1.0
    deltas = losses.delta_losses(codes, 5)
    assert len(deltas) == 5 and deltas[1].item() == pytest.approx(math.sqrt(8))
    sum(deltas).backward()
    # The gradient pulls w_2 towards w_0 (along +offset) and w_0 towards w_2.
    assert (codes.grad[:, 2] > 0).all() and (codes.grad[:, 0] < 0).all() and codes.grad[:, 3:].abs().sum() == 0
    assert losses.delta_losses(codes.detach(), 1)[0].item() == 0  # offset 2 is not active at stage 1

    ident = losses.FeatureSimilarityLoss(torch.nn.Conv2d(3, 4, 3), crop_face=True)
    y = torch.randn(2, 3, 256, 256)
    loss, improvement = ident(y, y)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and improvement == pytest.approx(0.0, abs=1e-6)
    assert ident(-y, y)[0].item() > 0

    d = LatentDiscriminator(8)
    real = torch.randn(5, 8)
    r = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(r).sum(), r)
    assert losses.r1_penalty(d, real)[0].item() == pytest.approx(g.pow(2).sum(1).mean().item(), rel=1e-5)
    lin = torch.nn.Linear(8, 1)  # a linear D has a constant gradient: R1 = |weights|^2 anywhere
    assert losses.r1_penalty(lin, real)[0].item() == pytest.approx(lin.weight.pow(2).sum().item(), rel=1e-5)
    codes = torch.randn(4, 6, 8)
    low = losses.encoder_adversarial_loss(lambda w: torch.full((w.shape[0], 1), 5.0), codes, [0, 1])
    high = losses.encoder_adversarial_loss(lambda w: torch.full((w.shape[0], 1), -5.0), codes, [0, 1])
    assert low < high
    assert set(dict(d.named_parameters())) == {f"mlp.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}


def hand_ranger(p0: np.ndarray, grads: list[np.ndarray], lr: float, centralize: bool) -> np.ndarray:
    """The official Ranger's arithmetic written out in float64: GC, Adam moments, RAdam rectification from
    step 6 (betas 0.95, 0.999), Lookahead k=6 alpha=0.5."""
    b1, b2, eps = 0.95, 0.999, 1e-5
    p, slow = p0.copy(), p0.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if centralize:
            g = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)
        v = b2 * v + (1 - b2) * g * g
        m = b1 * m + (1 - b1) * g
        sma_max = 2 / (1 - b2) - 1
        sma = sma_max - 2 * t * b2**t / (1 - b2**t)
        if sma > 5:
            r = math.sqrt((1 - b2**t) * (sma - 4) / (sma_max - 4) * (sma - 2) / sma * sma_max / (sma_max - 2))
            p = p - lr * r / (1 - b1**t) * m / (np.sqrt(v) + eps)
        else:
            p = p - lr / (1 - b1**t) * m
        if t % 6 == 0:
            slow = slow + 0.5 * (p - slow)
            p = slow.copy()
    return p


def test_ranger_centralizes_2d_gradients_and_matches_a_hand_computation():
    gen = torch.Generator().manual_seed(3)
    weight = torch.nn.Parameter(torch.randn(4, 5, generator=gen))
    bias = torch.nn.Parameter(torch.randn(4, generator=gen))
    w0, b0 = weight.detach().double().numpy().copy(), bias.detach().double().numpy().copy()
    opt = Ranger([weight, bias], lr=0.01)
    grads_w, grads_b = [], []
    for _ in range(13):  # momentum steps 1-5, rectified from 6, Lookahead at 6 and 12
        gw, gb = torch.randn(4, 5, generator=gen) + 2.0, torch.randn(4, generator=gen) + 2.0
        grads_w.append(gw.double().numpy())
        grads_b.append(gb.double().numpy())
        weight.grad, bias.grad = gw.clone(), gb.clone()
        opt.step()
    np.testing.assert_allclose(weight.detach().double().numpy(), hand_ranger(w0, grads_w, 0.01, True), rtol=1e-5)
    np.testing.assert_allclose(bias.detach().double().numpy(), hand_ranger(b0, grads_b, 0.01, False), rtol=1e-5)
    # Without centralization the weight would be elsewhere: the test can tell the two apart.
    assert not np.allclose(weight.detach().double().numpy(), hand_ranger(w0, grads_w, 0.01, False), rtol=1e-3)
    assert opt.state[weight]["step"] == 13


def test_ranger_counts_steps_per_parameter():
    """A parameter that first gets a gradient later (a style block enabled by progressive training) starts its own
    warm-up and Lookahead cycle, as in the official optimizer."""
    a, b = torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(3, 2))
    opt = Ranger([a, b], lr=0.1)
    for step in range(8):
        a.grad = torch.arange(6.0).reshape(3, 2)
        b.grad = torch.arange(6.0).reshape(3, 2) if step >= 2 else None
        opt.step()
    assert opt.state[a]["step"] == 8 and opt.state[b]["step"] == 6


def test_discriminator_sees_codes_with_the_mean_latent(tmp_path, train_folder):
    trainer = make_trainer(tmp_path, train_folder, use_w_pool=False)
    with torch.no_grad():
        trainer.model.latent_avg.fill_(3.0)
    x = torch.stack([trainer.train_data[i] for i in range(2)])
    trainer.state.step = 4  # stage 2: layers 0-2 are discriminated
    trainer.encoder.progressive_stage = trainer.stage
    real, fake = trainer.real_and_fake_latents(x)
    with torch.no_grad():
        expected = trainer.encoder(x) + trainer.model.latent_avg
    torch.testing.assert_close(fake, expected[:, 0])
    assert fake.mean() > 2.0 and real.shape == fake.shape == (2, 32)
    # With the pool, the fake pool picks one of the discriminated layers per sample (with the mean latent too).
    pooled = make_trainer(tmp_path / "p", train_folder, use_w_pool=True)
    with torch.no_grad():
        pooled.model.latent_avg.fill_(3.0)
    pooled.state.step = 4
    pooled.encoder.progressive_stage = pooled.stage
    _, fake = pooled.real_and_fake_latents(x)
    with torch.no_grad():
        codes = pooled.encoder(x) + pooled.model.latent_avg
    for b in range(2):
        assert any(torch.equal(fake[b], codes[b, i]) for i in range(3))


def test_delta_regularization_only_while_training_progressively(tmp_path, train_folder):
    x = None
    for start, expect in ((None, False), (0, True)):
        trainer = make_trainer(tmp_path / str(start), train_folder, progressive_start=start)
        x = torch.stack([trainer.train_data[i] for i in range(2)]) if x is None else x
        trainer.encoder.progressive_stage = trainer.stage
        _, logs, _ = trainer.encoder_losses(x, x)
        assert ("total_delta_loss" in logs) is expect
    assert logs["total_delta_loss"] > 0 and "delta1_loss" in logs  # progressive_start 0: stage 1 at step 0
    staged = make_trainer(tmp_path / "s", train_folder, progressive_start=2)
    _, logs, _ = staged.encoder_losses(x, x)
    assert logs["total_delta_loss"] == 0.0 and "delta1_loss" not in logs  # stage 0: logged, zero


def test_pool_follows_the_official_semantics():
    class Scripted(RandomDraws):
        """Layer picks (randint up to 2) always take layer 1; the swap decisions and slots follow a script."""

        def __init__(self):
            super().__init__(0)
            self.calls, self.script = [], []

        def randint(self, pool, low, high):
            self.calls.append((pool, "randint", low, high))
            return 1 if high == 2 else self.script.pop(0)

        def uniform(self, pool, low, high):
            self.calls.append((pool, "uniform", low, high))
            return self.script.pop(0)

    draws = Scripted()
    pool = LatentPool(2, draws, "fake")
    codes = torch.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    first = pool.query(codes)  # fills the pool: only the layer draws
    assert torch.equal(first, codes[:, 1]) and draws.calls == [("fake", "randint", 0, 2)] * 2
    draws.calls.clear()
    draws.script = [0.9, 1, 0.1]
    second = pool.query(codes + 100)
    # sample 0: p = 0.9 > 0.5 swaps with stored code 1; sample 1: p = 0.1 keeps the fresh code
    assert torch.equal(second[0], codes[1, 1]) and torch.equal(second[1], codes[1, 1] + 100)
    assert [c[1] for c in draws.calls] == ["randint", "uniform", "randint", "randint", "uniform"]


def test_batches_are_seeded_resumable_and_the_same_with_workers(train_folder):
    from stylecli.training.data import image_paths

    data = ImageFolder(image_paths(train_folder), flip=True, seed=5)

    def take(start, n, workers=0, seed=5):
        sampler = EpochBatches(len(data), 2, seed, start)
        out, pos = [], start
        for batch in batch_loader(data, sampler, workers):
            out.append(batch)
            pos = sampler.advance(pos)
            if len(out) == n:
                return out, pos

    straight, _ = take(Position(), 7)
    first, pos = take(Position(), 3)
    rest, _ = take(pos, 4)
    assert pos == Position(1, 2)  # 5 images: 2 full batches per epoch, the last image of each epoch dropped
    assert all(torch.equal(a, b) for a, b in zip(straight, first + rest))
    with_workers, _ = take(Position(), 7, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(straight, with_workers))
    other, _ = take(Position(), 7, seed=6)
    assert not all(torch.equal(a, b) for a, b in zip(straight, other))
    flips = {data.flipped(e, i) for e in range(4) for i in range(5)}
    assert flips == {True, False}


def _states_equal(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _states_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.slow
def test_resume_after_a_save_inside_the_loop_is_bit_exact(tmp_path, train_folder):
    """Save at step 3 while the run goes on, die at step 4, resume from latest.pt: steps 4-6 are those of the
    uninterrupted run, to the bit (batches, draws, pools, optimizer states, BN statistics, noise)."""
    from stylecli.files.checkpoints import read_checkpoint

    over = dict(steps=6, save_every=3, d_reg_every=2, progressive_start=1, progressive_step_every=1)
    straight = make_trainer(tmp_path / "a", train_folder, **over)
    straight_logs = []
    straight.run(progress=lambda s, logs: straight_logs.append(logs))

    class Killed(Exception):
        pass

    def die_at_4(step, logs):
        if step == 4:
            raise Killed

    first = make_trainer(tmp_path / "b", train_folder, **over)
    with pytest.raises(Killed):
        first.run(progress=die_at_4)
    ckpt = read_checkpoint(tmp_path / "b" / "run" / "latest.pt")
    assert ckpt["global_step"] == 3
    resumed = make_trainer(tmp_path / "c", train_folder, **over)
    resumed.resume(ckpt)
    resumed_logs = []
    resumed.run(progress=lambda s, logs: resumed_logs.append(logs))
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in straight_logs[3:]] == \
        [{k: v for k, v in r.items() if k not in strip} for r in resumed_logs]
    _states_equal(straight.encoder.state_dict(), resumed.encoder.state_dict(), "encoder")
    _states_equal(straight.discriminator.state_dict(), resumed.discriminator.state_dict(), "discriminator")
    _states_equal(straight.optimizer.state_dict(), resumed.optimizer.state_dict(), "ranger")
    _states_equal(straight.d_optimizer.state_dict(), resumed.d_optimizer.state_dict(), "adam")
    _states_equal(straight.fake_pool.state_dict(), resumed.fake_pool.state_dict(), "pool")
    assert straight.state == resumed.state


def test_resume_config_conflicts():
    saved = TrainConfig(data="faces", lr=1e-4, batch_size=8)
    assert resume_conflicts(saved, {"steps": 10, "workers": 4, "lr": 0.0001, "data": "./faces"}) == []
    assert resume_conflicts(saved, {"lr": 1e-3, "batch_size": 4, "progressive_start": None}) == [
        ("lr", 1e-3, 1e-4), ("batch_size", 4, 8), ("progressive_start", None, 20_000)]


@pytest.mark.slow
def test_training_lowers_the_reconstruction_loss(tmp_path, train_folder):
    trainer = make_trainer(tmp_path, train_folder, optimizer="adam", lr=3e-3, w_discriminator_lambda=0.0,
                           progressive_start=None, delta_norm_lambda=0.0, flip=False)
    x = torch.stack([trainer.train_data[i] for i in range(4)])

    def recon_loss():
        with torch.no_grad():
            y = trainer.model.decoder(trainer.encoder(x) + trainer.model.latent_avg)
            return torch.nn.functional.mse_loss(torch.nn.functional.adaptive_avg_pool2d(y, 256), x).item()

    before = recon_loss()
    trainer.run(until=60)
    after = recon_loss()
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_checkpoint_is_official_and_loads_in_invert(tmp_path, train_folder, face_png):
    trainer = make_trainer(tmp_path, train_folder, steps=3, save_every=3, val_every=3, image_every=3)
    trainer.run()
    run = Path(trainer.config.out)
    assert (run / "latest.pt").is_file() and (run / "best.pt").is_file()
    assert (run / "images" / "train_0000003.png").is_file() and (run / "images" / "val_0000003.png").is_file()
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3] and any("val_loss" in r for r in rows)
    assert {"loss_l2", "total_delta_loss", "encoder_discriminator_loss", "discriminator_loss",
            "discriminator_r1_loss"} <= set().union(*rows)
    ckpt = torch.load(run / "latest.pt", weights_only=True)
    assert set(ckpt) >= {"state_dict", "opts", "latent_avg"}
    assert all(k.startswith(("encoder.", "decoder.")) for k in ckpt["state_dict"])
    result = invoke("invert", face_png, "--no-align", "--checkpoint", run / "best.pt", "-o", tmp_path / "inv",
                    "--json")
    assert result.exit_code == 0, result.stderr
    assert records(result)[0]["ok"] is True
    # Last, as it skips (or fails under STYLECLI_REQUIRE_REFERENCE=1) without the reference: the official keys.
    keys = reference_dir("e4e_opts_keys.txt").read_text().splitlines()
    official = {line.split("\t")[0] for line in keys if line and not line.startswith("#")}
    assert len(official) > 10 and official <= set(ckpt["opts"])


def _tiny_run_files(tmp_path):
    from helpers import tiny_arcface

    g = tmp_path / "g.pt"
    torch.save({"g_ema": tiny_model().decoder.state_dict()}, g)
    arc = tmp_path / "arcface_tiny.pth"  # the encoder starts from these IR-SE weights (and their widths)
    torch.save(tiny_arcface().state_dict(), arc)
    return g, arc


@pytest.mark.slow
def test_train_command_end_to_end_resume_and_conflicts(tmp_path, train_folder):
    g, arc = _tiny_run_files(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--data", train_folder, "--generator", g, "--out", out, "--steps", "4", "--batch-size", "2",
            "--lpips-lambda", "0", "--id-lambda", "0", "--encoder-init", arc, "--mean-latent-samples", "64",
            "--save-every", "2", "--progressive-start", "1", "--progressive-step-every", "1", "--workers", "0", "-q"]
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert ckpt["global_step"] == 4 and ckpt["state_dict"]["encoder.body.0.res_layer.1.weight"].shape[0] == 16
    refused = invoke("train", "--resume", out, "--steps", "6", "--lr", "0.01", "--batch-size", "4",
                     "--no-progressive", "-q")
    assert refused.exit_code == 2
    conflicts = refused.stderr.split("flags contradict the saved run: ")[1].split("; ")[0].split(", ")
    assert conflicts == ["--batch-size 4 (the run has 2)", "--lr 0.01 (the run has 0.0001)",
                         "--progressive-start None (the run has 1)"], refused.stderr
    assert torch.load(out / "latest.pt", weights_only=True)["global_step"] == 4  # nothing ran
    result = invoke("train", "--resume", out, "--steps", "6", "--batch-size", "2", "--workers", "1", "-q")
    assert result.exit_code == 0, result.stderr
    assert torch.load(out / "latest.pt", weights_only=True)["global_step"] == 6
    missing = invoke("train", "--data", train_folder, "--generator", "stylegan2_ffhq", "--out", tmp_path / "x",
                     "--encoder-init", "none", "--id-lambda", "0", "--lpips-lambda", "0", "--batch-size", "2")
    assert missing.exit_code == 3 and "stylecli weights import stylegan2_ffhq PATH" in missing.stderr  # download
    assert not (tmp_path / "x").exists()
    assert invoke("train", "--out", out).exit_code == 2  # no --data, no --resume
    again = invoke(*args)  # a new run into the folder of another: refused, the run is left alone
    assert again.exit_code == 2 and f"--resume {out}" in again.stderr
    assert torch.load(out / "latest.pt", weights_only=True)["global_step"] == 6


def test_align_detects_each_photo_once_and_caches_the_crop(tmp_path, face_png):
    from PIL import Image

    from stylecli.faces import FaceAligner
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.training.data import aligned_images

    photos = tmp_path / "photos"
    photos.mkdir()
    big = Image.open(face_png).resize((400, 400))
    canvas = Image.new("RGB", (600, 600), (90, 120, 150))
    canvas.paste(big, (100, 120))
    canvas.save(photos / "a.png")
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(photos / "blank.png")

    class Counting:
        def __init__(self):
            self.inner, self.calls = FaceAligner(), 0

        def detect(self, pixels, upsample=None, landmark_pixels=None):
            self.calls += 1
            return self.inner.detect(pixels, upsample, landmark_pixels=landmark_pixels)

    aligner, said = Counting(), []
    editor = FaceEditor(None, None, "cpu")
    editor.aligner = aligner
    paths = sorted(photos.glob("*.png"))
    crops = aligned_images(paths, tmp_path / "cache", editor, said.append)
    assert len(crops) == 1 and aligner.calls == 2 and "blank.png" in said[0]
    assert np.asarray(Image.open(crops[0])).shape == (256, 256, 3)
    again = aligned_images(paths, tmp_path / "cache", editor, said.append)
    assert again == crops and aligner.calls == 2  # cached: dlib does not run again


@pytest.mark.slow
def test_two_processes_under_torchrun(tmp_path, train_folder):
    """torch.distributed on the CPU (Gloo): the same command, two ranks, rank 0 writes the checkpoint."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    g, arc = _tiny_run_files(tmp_path)
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "stylecli", "train", "--data", str(train_folder), "--generator",
           str(g), "--out", str(tmp_path / "run"), "--steps", "3", "--batch-size", "1",
           "--lpips-lambda", "0", "--id-lambda", "0", "--encoder-init", str(arc),
           "--mean-latent-samples", "64", "--save-every", "3", "--d-reg-every", "1", "--workers", "0", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "latest.pt", weights_only=True)["global_step"] == 3


@pytest.mark.parametrize("flag, value", [("--lr", "0"), ("--lr", "-1"), ("--w-discriminator-lr", "nan")])
def test_a_bad_learning_rate_is_a_usage_error_before_any_work(tmp_path, flag, value):
    (tmp_path / "data").mkdir()
    result = invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", flag, value, "-q")
    assert result.exit_code == 2 and flag in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (("--generator", "nosuch.pt"), "--generator nosuch.pt: no such file"),
    (("--generator", "sub/gen"), "--generator sub/gen: no such file"),
    (("--generator", "nosuch"), "--generator nosuch: unknown weights name 'nosuch'"),
    (("--generator", "age"), "--generator age: the registry's age is a direction"),
    (("--batch-size", "2"), "one: 1 image, fewer than --batch-size 2; give a smaller --batch-size"),
    (("--data", "{tmp}/empty"), "empty: no images in it"),
    (("--data", "{tmp}/nope"), "nope: no such folder"),
    (("--data", "{tmp}/one/a0.png"), "a0.png: not a folder"),
    (("--val-data", "{tmp}/nope"), "--val-data {tmp}/nope: no such folder"),
    (("--out", "{tmp}/tiny.pt/run"), "tiny.pt is a file, not a folder"),
    (("--out", "{tmp}/tiny.pt"), "--out {tmp}/tiny.pt: a file, not a folder; give the run folder"),
    (("--generator", "{tmp}/one"), "--generator {tmp}/one: a folder; give the generator's .pt file"),
    (("--encoder-init", "nope.pth"), "--encoder-init nope.pth: no such file"),
    (("--optimizer", "sgd"), "--optimizer sgd: expected ranger or adam"),
    (("--resume", "{tmp}/nope"), "--resume {tmp}/nope: no such checkpoint"),
])
def test_train_option_errors_exit_2_on_one_line_before_any_work(tmp_path, face_png, monkeypatch, args, message):
    from stylecli.registry import weights

    def refuse(*a, **k):
        raise AssertionError("weights resolved before the options were checked")

    monkeypatch.setattr(weights, "resolve", refuse)
    shifted_faces(tmp_path / "one", face_png, 1, 0, "a")
    (tmp_path / "empty").mkdir()
    (tmp_path / "tiny.pt").write_bytes(b"x")
    given = dict(zip(args[::2], (a.format(tmp=tmp_path) for a in args[1::2])))
    options = {"--data": str(tmp_path / "one"), "--out": str(tmp_path / "runs" / "y"), "--batch-size": "1", **given}
    result = invoke("train", *[x for kv in options.items() for x in kv], "-q")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("stylecli: error: ") and message.format(tmp=tmp_path) in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path, train_folder, monkeypatch):
    from stylecli.errors import StyleCliError
    from stylecli.training.trainer import Trainer

    def broken(self, x):
        raise StyleCliError("the step failed")

    monkeypatch.setattr(Trainer, "train_step", broken)
    g, arc = _tiny_run_files(tmp_path)
    args = ["--data", train_folder, "--generator", g, "--steps", "4", "--batch-size", "2", "--lpips-lambda", "0",
            "--id-lambda", "0", "--encoder-init", arc, "--mean-latent-samples", "64", "--workers", "0", "-q"]
    result = invoke("train", *args, "--out", tmp_path / "runs" / "y")
    assert result.exit_code == 1 and "the step failed" in result.stderr
    assert not (tmp_path / "runs").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made is kept
    assert invoke("train", *args, "--out", tmp_path / "mine").exit_code == 1
    assert (tmp_path / "mine").is_dir()
