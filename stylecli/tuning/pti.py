"""Pivotal tuning (PTI, Roich et al. 2021): keep an editable code (the pivot) and tune the generator until the pivot
renders the photo; edits of the pivot then render through the tuned weights.

The recipe follows danielroich/PTI: `configs/hyperparameters.py` (the version with `LPIPS_value_threshold = 0.06`
and `use_locality_regularization = False`), `training/coaches/base_coach.py` (Adam over the generator's
parameters, loss = 1 x MSE + 1 x LPIPS between the full-resolution output with constant noise and the target),
`training/coaches/single_id_coach.py` (at most 350 steps; the LPIPS of each step's forward pass is checked before
its update, and the loop stops when it is <= the threshold) and `criteria/localitly_regulizer.py` (locality).
Only the synthesis network is tuned: in PTI the mapping network never runs during tuning, so Adam never moves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecli.constants import PTI_LPIPS_STOP, PTI_LR, PTI_STEPS
from stylecli.tuning.generator_weights import GeneratorWeights, render, synthesis_parameters

# Perceptual distance between image batches in [-1, 1] -> one value per image (e.g. the AlexNet LPIPS).
LpipsFn = Callable[[Tensor, Tensor], Tensor]
# Called after each evaluation of the tuned generator: (step, lpips, mse).
TuningProgress = Callable[[int, float, float], None]


@dataclass(frozen=True)
class TuningConfig:
    """PTI's hyperparameters (names of configs/hyperparameters.py in the comments)."""

    steps: int = PTI_STEPS  # max_pti_steps
    lr: float = PTI_LR  # pti_learning_rate (Adam, default betas)
    l2_lambda: float = 1.0  # pt_l2_lambda
    lpips_lambda: float = 1.0  # pt_lpips_lambda
    lpips_stop: float = PTI_LPIPS_STOP  # LPIPS_value_threshold
    locality: bool = False  # use_locality_regularization
    locality_alpha: float = 30.0  # regulizer_alpha: distance from the pivot (norm over the whole W+ code)
    locality_l2_lambda: float = 0.1  # regulizer_l2_lambda
    locality_lpips_lambda: float = 0.1  # regulizer_lpips_lambda
    locality_samples: int = 1  # latent_ball_num_of_samples
    locality_truncation: float = 0.5  # truncation_psi of the sampled codes
    seed: int = 0  # for the locality samples

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"tuning steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"tuning learning rate must be > 0, got {self.lr}")
        if self.locality_samples < 1:
            raise ValueError(f"locality samples must be >= 1, got {self.locality_samples}")


@dataclass
class TuningResult:
    weights: GeneratorWeights  # tuned synthesis parameters, full tensors
    steps: int  # optimizer steps taken
    lpips: float  # of the returned weights
    mse: float
    pivot_lpips: float  # of the base generator at the pivot, before tuning
    pivot_mse: float
    stopped_early: bool  # LPIPS reached config.lpips_stop
    seconds: float


def target_tensor(pixels: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 [H, W, 3] -> [1, 3, H, W] in [-1, 1] (to tensor, then normalize with mean 0.5 and std 0.5)."""
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    return x.sub_(0.5).div_(0.5)[None].to(device)


def zero_noise(generator: nn.Module) -> list[Tensor]:
    """Noise maps of zeros: rendering without noise (PTI's locality term renders with noise_mode='none')."""
    return [torch.zeros_like(m) for m in generator.noises.maps()]


class Locality:
    """PTI's locality regularizer: a code `alpha` away from the pivot towards a random (truncated) mapped code
    must render through the tuned weights as it does through the base generator (0.1 MSE + 0.1 LPIPS)."""

    def __init__(self, generator: nn.Module, pivot: Tensor, lpips: LpipsFn, config: TuningConfig,
                 w_avg: Tensor | None = None):
        self.generator, self.pivot, self.lpips, self.config = generator, pivot, lpips, config
        self.rng = torch.Generator().manual_seed(config.seed)
        with torch.no_grad():
            self.w_avg = (generator.mean_latent(4096, self.rng) if w_avg is None else w_avg).reshape(1, -1)
        self.noise = zero_noise(generator)

    def far_codes(self) -> Tensor:
        """[samples, n_latent, dim] codes at distance alpha (Frobenius norm over the W+ code) from the pivot."""
        c = self.config
        z = torch.randn(c.locality_samples, self.w_avg.shape[1], generator=self.rng).to(self.pivot.device)
        with torch.no_grad():
            w = self.generator.map(z)
            w = self.w_avg + c.locality_truncation * (w - self.w_avg)
        direction = w[:, None, :] - self.pivot
        norms = direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
        return self.pivot + c.locality_alpha * direction / norms

    def loss(self, params: GeneratorWeights) -> Tensor:
        c = self.config
        total = self.pivot.new_zeros(())
        for code in self.far_codes():
            new = render(self.generator, code[None], params, self.noise)
            with torch.no_grad():
                old = render(self.generator, code[None], None, self.noise)
            total = total + c.locality_l2_lambda * F.mse_loss(new, old)
            total = total + c.locality_lpips_lambda * self.lpips(old, new).mean()
        return total / c.locality_samples


def adam(params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults; its fused implementation where this PyTorch has one for the device (the
    same update, about 5x faster than the default per-tensor loop on a CPU: bench/tuning.py)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def apply_gradients(optimizer: torch.optim.Optimizer, params: list[Tensor], grads: Sequence[Tensor]) -> None:
    """One update. Gradients get their parameter's memory layout first: the generator's channels-last
    activations give some (the constant input's) a channels-last gradient, which the fused CPU Adam of
    PyTorch 2.x pairs with the wrong parameter elements."""
    for p, g in zip(params, grads):
        p.grad = g.contiguous() if p.is_contiguous() else g
    optimizer.step()


def tune(
    generator: nn.Module,
    pivot: Tensor,
    target: Tensor,
    lpips: LpipsFn,
    config: TuningConfig | None = None,
    w_avg: Tensor | None = None,
    progress: TuningProgress | None = None,
) -> TuningResult:
    """Tune `generator`'s synthesis weights so that `pivot` [1, n_latent, dim] renders `target` [1, 3, S, S] in
    [-1, 1] at the generator's resolution. The generator itself is left untouched: the result holds the new
    weights. `w_avg` (the mean latent) is where the locality term's random codes are truncated towards.
    """
    config = config or TuningConfig()
    start = time.perf_counter()
    with torch.inference_mode(False), torch.enable_grad():
        device = next(generator.parameters()).device
        pivot = pivot.detach().clone().to(device, torch.float32)
        target = target.detach().clone().to(device, torch.float32)
        if target.shape[-1] != generator.size:
            raise ValueError(f"the target is {target.shape[-1]} px; this generator renders {generator.size} px")
        params = {n: p.detach().clone().requires_grad_(True) for n, p in synthesis_parameters(generator).items()}
        optimizer = adam(list(params.values()), config.lr)
        locality = Locality(generator, pivot, lpips, config, w_avg) if config.locality else None

        def evaluate() -> tuple[Tensor, Tensor, Tensor]:
            out = render(generator, pivot, params)
            mse, lp = F.mse_loss(out, target), lpips(out, target).mean()
            return config.l2_lambda * mse + config.lpips_lambda * lp, mse, lp

        steps, stopped = 0, False
        pivot_scores: tuple[float, float] | None = None
        for step in range(config.steps):
            loss, mse, lp = evaluate()
            lp_value, mse_value = lp.item(), mse.item()
            if pivot_scores is None:
                pivot_scores = (lp_value, mse_value)
            if progress:
                progress(step, lp_value, mse_value)
            if lp_value <= config.lpips_stop:
                stopped = True
                break
            if locality is not None:
                loss = loss + locality.loss(params)
            apply_gradients(optimizer, list(params.values()), torch.autograd.grad(loss, list(params.values())))
            steps += 1
        if not stopped:  # score the final weights (the loop only scores weights before each update)
            with torch.no_grad():
                _, mse, lp = evaluate()
            lp_value, mse_value = lp.item(), mse.item()
            if pivot_scores is None:
                pivot_scores = (lp_value, mse_value)
            if progress:
                progress(steps, lp_value, mse_value)
    weights = {n: p.detach() for n, p in params.items()}
    return TuningResult(weights, steps, lp_value, mse_value, pivot_scores[0], pivot_scores[1], stopped,
                        time.perf_counter() - start)
