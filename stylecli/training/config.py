"""The typed configuration of a training run, its official `opts`, and the check that a resume agrees with it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE = frozenset({"steps", "workers"})
OPTIMIZERS = ("ranger", "adam")


@dataclass
class TrainConfig:
    """Every weight and schedule of the recipe; defaults are the paper's (faces)."""

    data: str = ""
    val_data: str | None = None
    out: str = "runs/e4e"
    generator: str = "stylegan2_ffhq"
    encoder_init: str = "arcface"  # arcface (IR-SE50 face weights) | none | an IR-SE .pth | an e4e checkpoint
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
    progressive_start: int | None = 20_000  # None: every offset trains from step 0 (no delta regularization)
    progressive_step_every: int = 2_000
    mean_latent_samples: int = 100_000
    save_every: int = 5_000
    val_every: int = 1_000
    image_every: int = 500
    log_every: int = 50
    max_val_images: int = 256
    seed: int = 0
    workers: int = 2
    align: bool = False  # detect and align each training image once (cached in the run folder)
    shuffle: bool = True  # a new seeded order every epoch
    flip: bool = True  # random horizontal flips of the training images (the official train transform)
    dataset_type: str = "ffhq_encode"

    def __post_init__(self) -> None:
        from stylecli.errors import UsageError

        for option, value in (("--lr", self.lr), ("--w-discriminator-lr", self.w_discriminator_lr)):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"{option} {value}: a learning rate must be a positive number")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"--optimizer {self.optimizer}: expected {' or '.join(OPTIMIZERS)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a saved dict; keys this version does not know are ignored, missing ones get defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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


def _same(name: str, saved: Any, given: Any) -> bool:
    if name in ("data", "val_data", "out") and saved is not None and given is not None:
        return Path(saved).expanduser().resolve() == Path(given).expanduser().resolve()
    if isinstance(saved, float) or isinstance(given, float):
        return given is not None and saved is not None and float(saved) == float(given)
    return saved == given


def resume_conflicts(saved: TrainConfig, given: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The settings given for a resumed run that contradict the saved run: (field, given, saved) each.

    `given` holds only what the user set explicitly; `steps` and `workers` may change freely."""
    out = []
    for name, value in given.items():
        if name in RESUMABLE:
            continue
        old = getattr(saved, name)
        if not _same(name, old, value):
            out.append((name, value, old))
    return out
