"""The e4e training losses. Networks for the perceptual and identity terms are passed in, so tests can use
small random ones and users the pretrained ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import autograd, nn


def delta_loss(codes: torch.Tensor, active: int, p: int = 2) -> torch.Tensor:
    """Sum over the active offsets i = 1..active of the batch-mean p-norm of w_i - w_0."""
    total = codes.new_zeros(())
    for i in range(1, min(active, codes.shape[1] - 1) + 1):
        total = total + torch.linalg.vector_norm(codes[:, i] - codes[:, 0], ord=p, dim=1).mean()
    return total


class FeatureSimilarityLoss(nn.Module):
    """1 - cosine similarity of features: identity (ArcFace on the face crop) or MoCo (whole image)."""

    def __init__(self, net: nn.Module, crop_face: bool = True, size: int = 112):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.crop_face = crop_face
        self.size = size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop_face:
            x = x[:, :, 35:223, 32:220]
            x = F.adaptive_avg_pool2d(x, (self.size, self.size))
        else:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return F.normalize(self.net(x).flatten(1), dim=1)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(y)
        return (1 - (self.features(y_hat) * target).sum(dim=1)).mean()


def encoder_adversarial_loss(discriminator: nn.Module, codes: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """Non-saturating GAN loss of the encoder: softplus(-D(w_i)) averaged over the discriminated layers."""
    return sum(F.softplus(-discriminator(codes[:, i])).mean() for i in dims) / len(dims)


def discriminator_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def r1_penalty(discriminator: nn.Module, real_w: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of D at real codes (mean over the batch)."""
    real_w = real_w.detach().requires_grad_(True)
    pred = discriminator(real_w)
    (grad,) = autograd.grad(pred.sum(), real_w, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()

