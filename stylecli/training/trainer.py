"""The e4e training loop: encoder (and latent discriminator) optimisation with the paper's losses, progressive
offsets, validation, official-format checkpoints and exact resume. Single process or torch.distributed."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stylecli.errors import StyleCliError
from stylecli.models.e4e import E4E
from stylecli.models.latent_discriminator import LatentDiscriminator
from stylecli.training import losses
from stylecli.training.data import ImageFolder, epoch_order
from stylecli.training.pool import LatentPool
from stylecli.training.progressive import progressive_steps, stage_at
from stylecli.training.ranger import Ranger

STATE_VERSION = 1


@dataclass
class TrainConfig:
    """Every weight and schedule of the recipe; defaults are the paper's (faces)."""

    data: str = ""
    val_data: str | None = None
    out: str = "runs/e4e"
    generator: str = "stylegan2_ffhq"
    steps: int = 300_000
    batch_size: int = 8
    val_batch_size: int = 4
    lr: float = 1e-4
    optimizer: str = "ranger"  # ranger | adam
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8
    id_lambda: float = 0.1  # faces: ArcFace identity
    moco_lambda: float = 0.0  # other domains: MoCo feature similarity (0.5 in the paper)
    delta_norm: int = 2
    delta_norm_lambda: float = 2e-4
    w_discriminator_lambda: float = 0.1
    w_discriminator_lr: float = 2e-5
    r1: float = 10.0
    d_reg_every: int = 16
    use_w_pool: bool = False
    w_pool_size: int = 50
    progressive_start: int | None = 20_000
    progressive_step_every: int = 2_000
    mean_latent_samples: int = 100_000
    save_every: int = 5_000
    val_every: int = 1_000
    image_every: int = 500
    log_every: int = 50
    max_val_images: int = 256
    seed: int = 0
    workers: int = 2
    dataset_type: str = "ffhq_encode"

    def official_opts(self, size: int) -> dict[str, Any]:
        """`opts` as the official code saves them (its key names), so its tools read our checkpoints."""
        return {
            "batch_size": self.batch_size, "board_interval": self.log_every, "checkpoint_path": None,
            "d_reg_every": self.d_reg_every, "dataset_type": self.dataset_type, "delta_norm": self.delta_norm,
            "delta_norm_lambda": self.delta_norm_lambda, "device": "cuda:0", "encoder_type": "Encoder4Editing",
            "exp_dir": self.out, "id_lambda": self.id_lambda, "image_interval": self.image_every,
            "keep_optimizer": True, "l2_lambda": self.l2_lambda, "learning_rate": self.lr,
            "lpips_lambda": self.lpips_lambda, "lpips_type": "alex", "max_steps": self.steps,
            "optim_name": self.optimizer, "progressive_start": self.progressive_start,
            "progressive_step_every": self.progressive_step_every, "progressive_steps": None, "r1": self.r1,
            "resume_training_from_ckpt": None, "save_interval": self.save_every, "save_training_data": True,
            "start_from_latent_avg": True, "stylegan_size": size, "stylegan_weights": self.generator,
            "sub_exp_dir": None, "test_batch_size": self.val_batch_size, "test_workers": self.workers,
            "train_decoder": False, "update_param_list": None, "use_w_pool": self.use_w_pool,
            "val_interval": self.val_every, "w_discriminator_lambda": self.w_discriminator_lambda,
            "w_discriminator_lr": self.w_discriminator_lr, "w_pool_size": self.w_pool_size, "workers": self.workers,
            "moco_lambda": self.moco_lambda,
        }


@dataclass
class LossNets:
    """Pretrained networks behind the perceptual terms (None when the term's weight is 0)."""

    lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    identity: losses.FeatureSimilarityLoss | None = None
    moco: losses.FeatureSimilarityLoss | None = None


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    position: int = 0  # items of the current epoch already used (this rank)
    best_val: float = math.inf
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    def __init__(self, config: TrainConfig, model: E4E, nets: LossNets, device: torch.device,
                 dist: Distributed | None = None, aligner: Any = None):
        self.config = config
        self.device = device
        self.dist = dist or Distributed()
        self.model = model.to(device)
        self.model.decoder.eval().requires_grad_(False)  # G is frozen
        self.model.encoder.train().requires_grad_(True)
        self.encoder = self.model.encoder
        self.train_encoder = self.encoder
        self.nets = nets
        self.steps = progressive_steps(config.progressive_start, config.progressive_step_every, model.n_styles)
        if self.dist.world > 1:  # inactive offsets (progressive training) leave style blocks unused
            self.train_encoder = torch.nn.parallel.DistributedDataParallel(
                self.encoder, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.steps is not None)
        params = list(self.encoder.parameters())
        if config.optimizer == "ranger":
            self.optimizer: torch.optim.Optimizer = Ranger(params, lr=config.lr)
        elif config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=config.lr)
        else:
            raise StyleCliError(f"--optimizer {config.optimizer}: expected ranger or adam")
        self.discriminator: LatentDiscriminator | None = None
        if config.w_discriminator_lambda > 0:
            self.discriminator = LatentDiscriminator(model.decoder.style_dim).to(device)
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.w_discriminator_lr)
            self.real_pool = LatentPool(config.w_pool_size if config.use_w_pool else 0, config.seed + 1)
            self.fake_pool = LatentPool(config.w_pool_size if config.use_w_pool else 0, config.seed + 2)
        self.state = TrainState()
        self.out = Path(config.out)
        self.train_data = ImageFolder(Path(config.data), flip=True, seed=config.seed, aligner=aligner)
        self.val_data = ImageFolder(Path(config.val_data), flip=False, aligner=aligner) if config.val_data else None

    # --- the recipe --------------------------------------------------------------------------------------

    @property
    def stage(self) -> int:
        return stage_at(self.state.step, self.steps)

    def discriminated_dims(self) -> list[int]:
        if self.steps is None:
            return list(range(self.model.n_styles))
        return list(range(min(self.stage + 1, self.model.n_styles)))

    def encoder_losses(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        c = self.config
        codes = self.train_encoder(x) + self.model.latent_avg
        y_hat = self.model.decoder(codes, randomize_noise=True)
        y_hat = F.adaptive_avg_pool2d(y_hat, (256, 256))
        terms: dict[str, torch.Tensor] = {}
        if c.l2_lambda > 0:
            terms["l2"] = F.mse_loss(y_hat, x) * c.l2_lambda
        if c.lpips_lambda > 0:
            terms["lpips"] = self.nets.lpips(y_hat, x).mean() * c.lpips_lambda
        if c.id_lambda > 0:
            terms["id"] = self.nets.identity(y_hat, x) * c.id_lambda
        if c.moco_lambda > 0:
            terms["moco"] = self.nets.moco(y_hat, x) * c.moco_lambda
        if c.delta_norm_lambda > 0:
            terms["delta"] = losses.delta_loss(codes, self.stage, c.delta_norm) * c.delta_norm_lambda
        if self.discriminator is not None:
            terms["adversarial"] = losses.encoder_adversarial_loss(
                self.discriminator, codes, self.discriminated_dims()) * c.w_discriminator_lambda
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}, y_hat

    def discriminator_step(self, x: torch.Tensor) -> dict[str, float]:
        """One update of the latent discriminator: real w from the mapping network, fake from the encoder."""
        d = self.discriminator
        d.requires_grad_(True)
        with torch.no_grad():
            z = torch.randn(x.shape[0], self.model.decoder.style_dim, device=self.device)
            real_w = self.real_pool.query(self.model.decoder.map(z))
            fake = self.encoder(x)[:, self.discriminated_dims()]
            fake_w = self.fake_pool.query(fake[:, 0])
        loss = losses.discriminator_loss(d(real_w), d(fake_w))
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._average_gradients(d)
        self.d_optimizer.step()
        out = {"discriminator": float(loss.detach())}
        if self.state.step % self.config.d_reg_every == 0:
            r1 = losses.r1_penalty(d, real_w) * (self.config.r1 / 2 * self.config.d_reg_every)
            self.d_optimizer.zero_grad(set_to_none=True)
            r1.backward()
            self._average_gradients(d)
            self.d_optimizer.step()
            out["r1"] = float(r1.detach())
        d.requires_grad_(False)
        return out

    def _average_gradients(self, module: torch.nn.Module) -> None:
        """All-reduce a module's gradients across ranks (the discriminator is not wrapped in DDP because its R1
        penalty needs a double backward)."""
        if self.dist.world == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.dist.world

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        self.encoder.progressive_stage = self.stage
        logs: dict[str, float] = {}
        if self.discriminator is not None:
            logs.update(self.discriminator_step(x))
        loss, terms, self._last_recon = self.encoder_losses(x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        logs.update(terms)
        logs["loss"] = float(loss.detach())
        return logs

    # --- the loop ------------------------------------------------------------------------------------------

    def batches(self):
        """Batches in a deterministic order that continues from the saved epoch and position."""
        c = self.config
        while True:
            self.train_data.epoch = self.state.epoch
            order = epoch_order(len(self.train_data), c.seed, self.state.epoch, self.dist.rank, self.dist.world)
            while self.state.position + c.batch_size <= len(order):
                idx = order[self.state.position : self.state.position + c.batch_size]
                yield torch.stack([self.train_data[i] for i in idx]).to(self.device)
                self.state.position += c.batch_size
            self.state.epoch += 1
            self.state.position = 0
            if len(order) < c.batch_size:
                raise StyleCliError(f"{c.data}: fewer images ({len(order)}) than --batch-size {c.batch_size}")

    def run(self, until: int | None = None, progress: Callable[[int, dict[str, float]], None] | None = None) -> None:
        c = self.config
        until = min(until or c.steps, c.steps)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for x in self.batches():
            if self.state.step >= until:
                break
            logs = self.train_step(x)
            self.state.step += 1
            step = self.state.step
            logs.update(step=step, stage=self.stage, seconds=round(time.perf_counter() - started, 3))
            if self.dist.main:
                if step % c.log_every == 0 or step == 1:
                    self._append_log(logs)
                if c.image_every and step % c.image_every == 0:
                    self._write_grid(x, self._last_recon, self.out / "images" / f"train_{step:07d}.png")
            if self.val_data is not None and c.val_every and step % c.val_every == 0:
                self.validate()
            if self.dist.main and (step % c.save_every == 0 or step == until):
                self.save(self.out / "latest.pt")
            if progress and self.dist.main:
                progress(step, logs)

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the validation images; a new best is saved as best.pt."""
        self.encoder.eval()
        totals: list[float] = []
        n = min(len(self.val_data), self.config.max_val_images)
        first_batch = None
        for start in range(0, n, self.config.val_batch_size):
            x = torch.stack([self.val_data[i] for i in range(start, min(n, start + self.config.val_batch_size))])
            x = x.to(self.device)
            loss, _, y_hat = self.encoder_losses(x)
            totals.append(float(loss) * x.shape[0])
            if first_batch is None:
                first_batch = (x, y_hat)
        self.encoder.train()
        value = sum(totals) / n
        if self.dist.main:
            self._append_log({"step": self.state.step, "val_loss": value})
            self._write_grid(*first_batch, self.out / "images" / f"val_{self.state.step:07d}.png")
            if value < self.state.best_val:
                self.state.best_val = value
                self.save(self.out / "best.pt")
        return value

    # --- files ---------------------------------------------------------------------------------------------

    def _append_log(self, row: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _write_grid(self, x: torch.Tensor, y_hat: torch.Tensor, dest: Path) -> None:
        """input | reconstruction, one pair per row."""
        from stylecli.images import write_png
        from stylecli.pipeline import to_uint8

        pairs = torch.cat([x[:4], y_hat[:4].detach()], dim=3)
        write_png(to_uint8(pairs).reshape(-1, pairs.shape[3], 3), dest, overwrite=True)

    def save(self, path: Path) -> None:
        """Official-format checkpoint plus the training state (optimizers, discriminator, RNG, data position)."""
        from stylecli.checkpoint import save_checkpoint

        extra: dict[str, Any] = {
            "global_step": self.state.step,
            "best_val_loss": self.state.best_val,
            "optimizer": self.optimizer.state_dict(),
            "stylecli_training": {
                "version": STATE_VERSION, "epoch": self.state.epoch, "position": self.state.position,
                "progressive_stage": self.stage, "config": asdict(self.config),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        if self.discriminator is not None:
            extra["discriminator_state_dict"] = self.discriminator.state_dict()
            extra["discriminator_optimizer_state_dict"] = self.d_optimizer.state_dict()
            extra["stylecli_training"]["pools"] = [self.real_pool.state_dict(), self.fake_pool.state_dict()]
        self.encoder.progressive_stage = self.stage
        save_checkpoint(self.model, path, self.config.official_opts(self.model.decoder.size), extra)

    def resume(self, ckpt: dict[str, Any]) -> None:
        """Continue from a checkpoint written by save()."""
        train = ckpt.get("stylecli_training")
        if not isinstance(train, dict):
            raise StyleCliError("the checkpoint has no training state (it was not written by `stylecli train`)")
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        missing = [k for k in state if k not in ckpt["state_dict"]]
        if missing:
            raise StyleCliError(f"the checkpoint does not match this encoder (missing {missing[0]})")
        self.encoder.load_state_dict({k[8:]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")})
        self.model.latent_avg.copy_(ckpt["latent_avg"].reshape(self.model.latent_avg.shape))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.discriminator is not None and "discriminator_state_dict" in ckpt:
            self.discriminator.load_state_dict(ckpt["discriminator_state_dict"])
            self.d_optimizer.load_state_dict(ckpt["discriminator_optimizer_state_dict"])
            real, fake = train["pools"]
            self.real_pool.load_state_dict(real)
            self.fake_pool.load_state_dict(fake)
        self.state.step = int(ckpt["global_step"])
        self.state.best_val = float(ckpt.get("best_val_loss", math.inf))
        self.state.epoch, self.state.position = int(train["epoch"]), int(train["position"])
        torch.set_rng_state(train["rng"])
        if torch.cuda.is_available() and train.get("cuda_rng"):
            torch.cuda.set_rng_state_all(train["cuda_rng"])


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: join the process group (NCCL on CUDA, Gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), None  # type: ignore[return-value]
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Distributed(rank, world), device


def training_model(generator: Any, encoder_init: dict[str, torch.Tensor] | None, mean_latent_samples: int,
                   seed: int = 0, widths: tuple[int, ...] | None = None) -> E4E:
    """A fresh e4e encoder (its IR-SE50 backbone from ArcFace weights when given) on a frozen generator, with
    the mean latent of `mean_latent_samples` mapping-network samples."""
    from stylecli.models.e4e import StyleEncoder

    if encoder_init is not None:
        widths = tuple(int(encoder_init[f"body.{b}.res_layer.1.weight"].shape[0]) for b in (0, 3, 7, 21))
    torch.manual_seed(seed)
    encoder = StyleEncoder(generator.n_latent, "e4e", widths or (64, 128, 256, 512), generator.style_dim)
    if encoder_init is not None:
        wanted = {k: v for k, v in encoder_init.items() if k.startswith(("input_layer.", "body."))}
        own = encoder.state_dict()
        absent = [k for k in own if k.startswith(("input_layer.", "body.")) and k not in wanted]
        if absent:
            raise StyleCliError(f"the ArcFace weights lack {absent[0]}: not an IR-SE50 backbone")
        encoder.load_state_dict(wanted, strict=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mean = generator.mean_latent(mean_latent_samples, gen)
    return E4E(encoder, generator, mean)
