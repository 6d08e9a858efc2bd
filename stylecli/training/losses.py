"""The e4e training losses, with the official loss terms' semantics (omertov/encoder4editing
`training/coach.py` `calc_loss`, `discriminator_loss`, `discriminator_r1_loss`; `criteria/id_loss.py` and
`criteria/moco_loss.py`). Networks for the perceptual and identity terms are passed in."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import autograd, nn

Discriminator = Callable[[torch.Tensor], torch.Tensor]


def delta_losses(codes: torch.Tensor, stage: int, p: int = 2) -> list[torch.Tensor]:
    """||w_i - w_0||_p averaged over the batch, for the offsets i = 1..stage that progressive training enabled."""
    first = codes[:, 0]
    return [torch.linalg.vector_norm(codes[:, i] - first, ord=p, dim=1).mean()
            for i in range(1, min(stage, codes.shape[1] - 1) + 1)]


class FeatureSimilarityLoss(nn.Module):
    """1 - cosine similarity of unit features of the reconstruction and the target, averaged over the batch.

    Faces: ArcFace on the face region (rows 35:223, columns 32:220 of the 256-px image, average-pooled to 112 px),
    as the official `IDLoss`; other domains: MoCo on the whole image, nearest-resized to 224 px, as `MocoLoss`.
    `forward` also returns the official `id_improve`: the mean of sim(y_hat, y) - sim(y, x), in Python floats.
    """

    def __init__(self, net: nn.Module, crop_face: bool = True, size: int = 112):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.crop_face = crop_face
        self.size = size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop_face:
            x = F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], (self.size, self.size))
        else:
            x = F.interpolate(x, size=self.size)
        return F.normalize(self.net(x).flatten(1), dim=1)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, float]:
        with torch.no_grad():
            y_feats = self.features(y)
            x_feats = y_feats if x is None or x is y else self.features(x)  # source == target: one pass
        y_hat_feats = self.features(y_hat)
        loss, improvement = 0.0, 0.0
        for i in range(y_hat.shape[0]):
            target = y_hat_feats[i].dot(y_feats[i])
            loss = loss + (1 - target)
            improvement += float(target.detach()) - float(y_feats[i].dot(x_feats[i]))
        n = y_hat.shape[0]
        return loss / n, improvement / n


def encoder_adversarial_loss(discriminator: Discriminator, codes: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """Non-saturating GAN loss of the encoder: softplus(-D(w_i)), averaged over the discriminated style layers."""
    total = 0.0
    for i in dims:
        total = total + F.softplus(-discriminator(codes[:, i])).mean()
    return total / len(dims)


def discriminator_losses(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(softplus(-D(real)), softplus(D(fake))), each averaged over the batch."""
    return F.softplus(-real_pred).mean(), F.softplus(fake_pred).mean()


def r1_penalty(discriminator: Discriminator, real_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared gradient norm of D at the real codes averaged over the batch, D's predictions there)."""
    real_w = real_w.detach().requires_grad_(True)
    pred = discriminator(real_w)
    (grad,) = autograd.grad(pred.sum(), real_w, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean(), pred
