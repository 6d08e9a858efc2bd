"""PTI's own pivot: optimize one W code (shared by every style layer) so that the generator renders the target.

The schedule is danielroich/PTI's `training/projectors/w_projector.py` as `calc_inversions` in
`training/coaches/base_coach.py` calls it (450 steps, W statistics from 600 mapping samples of
numpy's RandomState(123)): start at the mean w; Adam; learning rate 0.01 ramped up over the first 5% of the steps
and down (cosine) over the last 25% (the optimizer's own lr is replaced by the schedule from the first step);
Gaussian noise on w of 0.05 x the W standard deviation, fading out quadratically over the first 75%; random noise
maps optimized alongside w, renormalized after each step and kept white by a 1e5-weighted autocorrelation
penalty over an image pyramid; a perceptual distance on images area-downsampled to 256 px.
The optimized noise maps are discarded (PTI projects on a copy of the generator): tuning uses the stored noise.

One difference: PTI's perceptual distance is NVIDIA's VGG16 LPIPS feature network; here it is the LPIPS function
passed in (the tuning stage passes its AlexNet LPIPS), so no other network is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecli.tuning.pti import LpipsFn

PERCEPTUAL_SIZE = 256


@dataclass(frozen=True)
class ProjectionConfig:
    steps: int = 450  # first_inv_steps
    w_avg_samples: int = 600
    lr: float = 0.01  # initial_learning_rate
    w_noise_factor: float = 0.05  # initial_noise_factor
    lr_rampdown: float = 0.25  # lr_rampdown_length
    lr_rampup: float = 0.05  # lr_rampup_length
    w_noise_ramp: float = 0.75  # noise_ramp_length
    noise_weight: float = 1e5  # regularize_noise_weight
    seed: int = 123  # RandomState of the W statistics

    def lr_at(self, t: float) -> float:
        """The learning rate at fraction t of the run."""
        ramp = min(1.0, (1.0 - t) / self.lr_rampdown)
        ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
        return self.lr * ramp * min(1.0, t / self.lr_rampup)


def w_statistics(generator: nn.Module, samples: int, seed: int) -> tuple[Tensor, float]:
    """Mean w [1, dim] and the scalar standard deviation sqrt(sum |w - mean|^2 / samples)."""
    z = np.random.RandomState(seed).randn(samples, generator.style_dim).astype(np.float32)
    with torch.no_grad():
        w = generator.map(torch.from_numpy(z).to(next(generator.parameters()).device))
    mean = w.mean(0, keepdim=True)
    return mean, float(((w - mean).square().sum() / samples).sqrt())


def noise_penalty(noises: list[Tensor]) -> Tensor:
    """Squared autocorrelation of each noise map with its one-pixel shifts, at every scale down to 8 px."""
    total = noises[0].new_zeros(())
    for noise in noises:
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            total = total + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


def _perceptual_size(x: Tensor) -> Tensor:
    return F.interpolate(x, size=(PERCEPTUAL_SIZE, PERCEPTUAL_SIZE), mode="area") if x.shape[2] > PERCEPTUAL_SIZE else x


def project_w(
    generator: nn.Module,
    target: Tensor,
    perceptual: LpipsFn,
    config: ProjectionConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Tensor:
    """The W pivot of `target` [1, 3, S, S] in [-1, 1], returned as a W+ code [1, n_latent, dim].
    progress(steps done, perceptual distance) after each step."""
    config = config or ProjectionConfig()
    rng = torch.Generator().manual_seed(config.seed)
    with torch.inference_mode(False), torch.enable_grad():
        device = next(generator.parameters()).device
        target = _perceptual_size(target.detach().clone().to(device, torch.float32))
        w_avg, w_std = w_statistics(generator, config.w_avg_samples, config.seed)
        w = w_avg.detach().clone().requires_grad_(True)
        noises = [torch.randn(m.shape, generator=rng).to(device).requires_grad_(True) for m in generator.noises.maps()]
        optimizer = torch.optim.Adam([w, *noises], lr=config.lr, betas=(0.9, 0.999))
        for step in range(config.steps):
            t = step / config.steps
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(t)
            w_noise_scale = w_std * config.w_noise_factor * max(0.0, 1.0 - t / config.w_noise_ramp) ** 2
            w_noise = torch.randn(w.shape, generator=rng).to(device) * w_noise_scale
            codes = (w + w_noise)[:, None, :].expand(-1, generator.n_latent, -1)
            images = generator(codes, input_is_latent=True, noise=noises)
            distance = perceptual(_perceptual_size(images), target).sum()
            loss = distance + config.noise_weight * noise_penalty(noises)
            grads = torch.autograd.grad(loss, [w, *noises])
            for p, g in zip([w, *noises], grads):
                p.grad = g
            optimizer.step()
            with torch.no_grad():
                for n in noises:
                    n.sub_(n.mean()).mul_(n.square().mean().rsqrt())
            if progress:
                progress(step + 1, float(distance))
    return w.detach()[:, None, :].expand(-1, generator.n_latent, -1).clone()
