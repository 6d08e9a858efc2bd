"""The e4e training loop: one step as the official coach takes it (omertov/encoder4editing `training/coach.py`
`Coach.train`: `train_discriminator`, `forward`, `calc_loss`, the optimizer step, the progressive schedule),
validation, official-format checkpoints and an exact resume. Single process or torch.distributed."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stylecli.errors import StyleCliError
from stylecli.models.e4e import E4E, INFERENCE_STAGE, per_style_mean
from stylecli.models.latent_discriminator import LatentDiscriminator
from stylecli.training import losses
from stylecli.training.config import TrainConfig
from stylecli.training.data import EpochBatches, ImageFolder, Position, batch_loader, image_paths
from stylecli.training.draws import Draws, RandomDraws
from stylecli.training.pool import LatentPool
from stylecli.training.progressive import progressive_steps, stage_at
from stylecli.training.ranger import Ranger

STATE_VERSION = 2
Logs = dict[str, float]


def _value(x: Any) -> float:
    """A logged loss value (float() of the tensor, as the official loss dicts hold)."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


@dataclass
class LossNets:
    """Pretrained networks behind the perceptual terms (None when the term's weight is 0).

    `lpips(a, b)` returns the LPIPS distance per image; `identity` and `moco` are FeatureSimilarityLoss modules."""

    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    identity: losses.FeatureSimilarityLoss | None = None
    moco: losses.FeatureSimilarityLoss | None = None


@dataclass
class TrainImages:
    train: list[Path]
    val: list[Path] | None = None


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainState:
    step: int = 0  # steps taken (the official global_step of the next step)
    position: Position = field(default_factory=Position)  # the data the next step uses
    best_val: float = math.inf


class Trainer:
    """Trains `model.encoder` (and the latent discriminator) on frozen `model.decoder`.

    `draws` supplies the random numbers of the discriminator step (default: RandomDraws(config.seed)); pass another
    `Draws` to feed chosen numbers. `discriminator` is the initial latent discriminator (default: a fresh one)."""

    def __init__(self, config: TrainConfig, model: E4E, nets: LossNets, device: torch.device, *,
                 images: TrainImages | None = None, dist: Distributed | None = None, draws: Draws | None = None,
                 discriminator: LatentDiscriminator | None = None):
        self.config, self.device, self.nets = config, device, nets
        self.dist = dist or Distributed()
        self.model = model.to(device)
        self.model.decoder.eval().requires_grad_(False)  # G is frozen
        self.encoder = self.model.encoder.train().requires_grad_(True)
        self.steps = progressive_steps(config.progressive_start, config.progressive_step_every, model.n_styles)
        self.train_encoder = self.encoder
        if self.dist.world > 1:  # inactive offsets (progressive training) leave style blocks unused
            self.train_encoder = torch.nn.parallel.DistributedDataParallel(
                self.encoder, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.steps is not None)
        self.optimizer = self._optimizer()
        self.draws = draws or RandomDraws(config.seed + self.dist.rank)
        self.discriminator: LatentDiscriminator | None = None
        if config.w_discriminator_lambda > 0:
            d = discriminator or LatentDiscriminator(model.decoder.style_dim)
            self.discriminator = d.to(device).requires_grad_(False)
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.w_discriminator_lr)
            size = config.w_pool_size if config.use_w_pool else 0
            self.real_pool = LatentPool(size, self.draws, "real")
            self.fake_pool = LatentPool(size, self.draws, "fake")
        self.state = TrainState()
        self.out = Path(config.out)
        images = images or TrainImages(image_paths(config.data), image_paths(config.val_data) if config.val_data
                                       else None)
        self.train_data = ImageFolder(images.train, flip=config.flip, seed=config.seed)
        self.val_data = ImageFolder(images.val, flip=False) if images.val else None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def _optimizer(self) -> torch.optim.Optimizer:
        params = list(self.encoder.parameters())
        if self.config.optimizer == "ranger":
            return Ranger(params, lr=self.config.lr)
        if self.config.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.config.lr)
        raise StyleCliError(f"--optimizer {self.config.optimizer}: expected ranger or adam")

    # --- the recipe --------------------------------------------------------------------------------------

    @property
    def stage(self) -> int:
        return stage_at(self.state.step, self.steps)

    @property
    def progressive(self) -> bool:
        return self.steps is not None

    def discriminated_dims(self) -> list[int]:
        """The style layers the discriminator judges: the distinct codes so far while training progressively."""
        n = self.model.n_styles
        return list(range(min(self.stage + 1, n))) if self.progressive else list(range(n))

    def real_and_fake_latents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the discriminator compares, as the official `sample_real_and_fake_latents`: mapping-network codes
        of fresh z, and the encoder's codes plus the mean latent (the codes the generator receives), only the
        layers being discriminated while training progressively; both through the pools; style 0 if still 3-d."""
        z = self.draws.latent_z(self.config.batch_size, self.model.decoder.style_dim, self.device)
        real_w = self.model.decoder.map(z)
        fake_w = self.encoder(x) + self.model.latent_avg
        if self.progressive:
            fake_w = fake_w[:, self.discriminated_dims()]
        if self.config.use_w_pool:
            real_w = self.real_pool.query(real_w)
            fake_w = self.fake_pool.query(fake_w)
        if fake_w.ndim == 3:
            fake_w = fake_w[:, 0]
        return real_w, fake_w

    def discriminator_step(self, x: torch.Tensor) -> Logs:
        """One update of the latent discriminator, then, every d_reg_every steps, one more with the R1 penalty."""
        c, d = self.config, self.discriminator
        d.requires_grad_(True)
        with torch.no_grad():
            real_w, fake_w = self.real_and_fake_latents(x)
        real_loss, fake_loss = losses.discriminator_losses(d(real_w), d(fake_w))
        loss = real_loss + fake_loss
        logs = {"d_real_loss": _value(real_loss), "d_fake_loss": _value(fake_loss), "discriminator_loss": _value(loss)}
        self.d_optimizer.zero_grad()
        loss.backward()
        self._average_gradients(d)
        self.d_optimizer.step()
        if self.state.step % c.d_reg_every == 0:
            penalty, pred = losses.r1_penalty(d, real_w)
            d.zero_grad()
            r1_loss = c.r1 / 2 * penalty * c.d_reg_every + 0 * pred[0]
            r1_loss.backward()
            self._average_gradients(d)
            self.d_optimizer.step()
            logs["discriminator_r1_loss"] = _value(r1_loss)
        d.requires_grad_(False)
        return logs

    def encoder_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Logs, torch.Tensor]:
        """The official `forward` + `calc_loss`: (weighted total, unweighted terms under the official keys, y_hat)."""
        c, nets = self.config, self.nets
        codes = self.train_encoder(x) + self.model.latent_avg
        y_hat = F.adaptive_avg_pool2d(self.model.decoder(codes, randomize_noise=True), (256, 256))
        loss: Any = 0.0
        logs: Logs = {}
        if self.discriminator is not None:
            adv = losses.encoder_adversarial_loss(self.discriminator, codes, self.discriminated_dims())
            logs["encoder_discriminator_loss"] = _value(adv)
            loss = loss + c.w_discriminator_lambda * adv
        if self.progressive and self.stage != INFERENCE_STAGE:  # delta regularization: progressive training only
            total: Any = 0
            for i, delta in enumerate(losses.delta_losses(codes, self.stage, c.delta_norm), start=1):
                logs[f"delta{i}_loss"] = _value(delta)
                total = total + delta
            logs["total_delta_loss"] = _value(total)
            loss = loss + c.delta_norm_lambda * total
        if c.id_lambda > 0:
            loss_id, improvement = nets.identity(y_hat, y, x)
            logs["loss_id"], logs["id_improve"] = _value(loss_id), improvement
            loss = loss + loss_id * c.id_lambda
        if c.l2_lambda > 0:
            loss_l2 = F.mse_loss(y_hat, y)
            logs["loss_l2"] = _value(loss_l2)
            loss = loss + loss_l2 * c.l2_lambda
        if c.lpips_lambda > 0:
            loss_lpips = nets.lpips(y_hat, y).sum() / y.shape[0]
            logs["loss_lpips"] = _value(loss_lpips)
            loss = loss + loss_lpips * c.lpips_lambda
        if c.moco_lambda > 0:
            loss_moco, _ = nets.moco(y_hat, y, x)
            logs["loss_moco"] = _value(loss_moco)
            loss = loss + loss_moco * c.moco_lambda
        if not isinstance(loss, torch.Tensor):
            raise StyleCliError("every loss weight is 0: nothing to train")
        logs["loss"] = _value(loss)
        return loss, logs, y_hat

    def _average_gradients(self, module: torch.nn.Module) -> None:
        """All-reduce a module's gradients across ranks (the discriminator is not wrapped in DDP because its R1
        penalty needs a double backward)."""
        if self.dist.world == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.dist.world

    def train_step(self, x: torch.Tensor) -> Logs:
        """One official step on batch x (source = target): discriminator, encoder losses, optimizer step."""
        stage = self.encoder.progressive_stage = self.stage
        logs: Logs = {}
        if self.discriminator is not None:
            logs.update(self.discriminator_step(x))
        loss, terms, y_hat = self.encoder_losses(x, x)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self._last = (x, y_hat)
        logs.update(terms)
        logs["stage"] = stage
        return logs

    # --- the loop ------------------------------------------------------------------------------------------

    def run(self, until: int | None = None, progress: Callable[[int, Logs], None] | None = None) -> None:
        """Train until step `until` (default: config.steps). The data position moves past each batch before the
        step that uses it can be saved, so a checkpoint written inside the loop resumes with the next batch."""
        c = self.config
        until = min(until or c.steps, c.steps)
        if self.state.step >= until:
            return
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        sampler = EpochBatches(len(self.train_data), c.batch_size, c.seed, self.state.position, c.shuffle,
                               self.dist.rank, self.dist.world)
        started = time.perf_counter()
        for x in batch_loader(self.train_data, sampler, c.workers):
            self.state.position = sampler.advance(self.state.position)
            logs = self.train_step(x.to(self.device))
            self.state.step += 1
            self._after_step(logs, until, started)
            if progress and self.dist.main:
                progress(self.state.step, logs)
            if self.state.step >= until:
                break

    def _after_step(self, logs: Logs, until: int, started: float) -> None:
        c, step = self.config, self.state.step
        logs.update(step=step, seconds=round(time.perf_counter() - started, 3))
        if self.dist.main:
            if step % c.log_every == 0 or step == 1:
                self._append_log(logs)
            if c.image_every and step % c.image_every == 0 and self._last is not None:
                self._write_grid(*self._last, self.out / "images" / f"train_{step:07d}.png")
        if self.val_data is not None and c.val_every and (step % c.val_every == 0 or step == until):
            self.validate()
        if self.dist.main and (step % c.save_every == 0 or step == until):
            self.save(self.out / "latest.pt")

    @torch.no_grad()
    def validate(self) -> float:
        """Mean losses over the validation images (the official `validate`, discriminator terms included: they
        draw from the pools as the official code does); a new best loss is saved as best.pt."""
        self.encoder.eval()
        n = min(len(self.val_data), self.config.max_val_images)
        rows, first = [], None
        for start in range(0, n, self.config.val_batch_size):
            x = torch.stack([self.val_data[i] for i in range(start, min(n, start + self.config.val_batch_size))])
            x = x.to(self.device)
            row: Logs = {}
            if self.discriminator is not None:
                real_w, fake_w = self.real_and_fake_latents(x)
                real, fake = losses.discriminator_losses(self.discriminator(real_w), self.discriminator(fake_w))
                row.update(d_real_loss=float(real), d_fake_loss=float(fake), discriminator_loss=float(real + fake))
            _, terms, y_hat = self.encoder_losses(x, x)
            rows.append({**row, **terms})
            first = first or (x, y_hat)
        self.encoder.train()
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        if self.dist.main:
            self._append_log({"step": self.state.step, **{f"val_{k}": v for k, v in mean.items()}})
            self._write_grid(*first, self.out / "images" / f"val_{self.state.step:07d}.png")
            if mean["loss"] < self.state.best_val:
                self.state.best_val = mean["loss"]
                self.save(self.out / "best.pt")
        return mean["loss"]

    # --- files ---------------------------------------------------------------------------------------------

    def _append_log(self, row: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _write_grid(self, x: torch.Tensor, y_hat: torch.Tensor, dest: Path) -> None:
        """input | reconstruction, one pair per row."""
        from stylecli.convert import to_uint8
        from stylecli.files.images import write_png

        pairs = torch.cat([x[:4], y_hat[:4].detach()], dim=3)
        write_png(to_uint8(pairs).reshape(-1, pairs.shape[3], 3), dest, overwrite=True)

    def save(self, path: Path) -> None:
        """Official-format checkpoint plus the training state (optimizers, discriminator, pools, draws, RNG, data
        position)."""
        from stylecli.encoders.formats.e4e import save_checkpoint

        train: dict[str, Any] = {
            "version": STATE_VERSION, "epoch": self.state.position.epoch, "position": self.state.position.used,
            "progressive_stage": self.stage, "config": self.config.to_dict(), "draws": self.draws.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        extra: dict[str, Any] = {"global_step": self.state.step, "best_val_loss": self.state.best_val,
                                 "optimizer": self.optimizer.state_dict(), "stylecli_training": train}
        if self.discriminator is not None:
            extra["discriminator_state_dict"] = self.discriminator.state_dict()
            extra["discriminator_optimizer_state_dict"] = self.d_optimizer.state_dict()
            train["pools"] = [self.real_pool.state_dict(), self.fake_pool.state_dict()]
        self.encoder.progressive_stage = self.stage
        save_checkpoint(self.model, path, self.config.official_opts(self.model.decoder.size), extra)

    def resume(self, ckpt: dict[str, Any]) -> None:
        """Continue from a checkpoint written by save()."""
        train = ckpt.get("stylecli_training")
        if not isinstance(train, dict) or train.get("version") != STATE_VERSION:
            raise StyleCliError("the checkpoint has no training state of this version (not written by this "
                                "`stylecli train`); start a new run from it with --encoder-init CHECKPOINT")
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        missing = [k for k in state if k not in ckpt["state_dict"]]
        if missing:
            raise StyleCliError(f"the checkpoint does not match this encoder (missing {missing[0]})")
        self.encoder.load_state_dict({k[8:]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")})
        self.model.latent_avg.copy_(per_style_mean(ckpt["latent_avg"], *self.model.latent_avg.shape))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(ckpt["discriminator_state_dict"])
            self.d_optimizer.load_state_dict(ckpt["discriminator_optimizer_state_dict"])
            real, fake = train["pools"]
            self.real_pool.load_state_dict(real, self.device)
            self.fake_pool.load_state_dict(fake, self.device)
        self.draws.load_state_dict(train["draws"])
        self.state = TrainState(int(ckpt["global_step"]), Position(int(train["epoch"]), int(train["position"])),
                                float(ckpt.get("best_val_loss", math.inf)))
        torch.set_rng_state(train["rng"])
        if torch.cuda.is_available() and train.get("cuda_rng"):
            torch.cuda.set_rng_state_all(train["cuda_rng"])


def init_distributed(device_name: str) -> tuple[Distributed, torch.device | None]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: join the process group (NCCL on CUDA, Gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Distributed(rank, world), device
