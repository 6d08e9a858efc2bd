"""ArcFace IR-SE50, the identity network of pSp / e4e (identity loss and the `id` metric)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stylecli.models.irse import IRSE50_WIDTHS, irse_body, irse_input_layer


class ArcFace(nn.Module):
    """112x112 face in [-1, 1] -> unit 512-vector. Tensor keys as in `model_ir_se50.pth` (input_layer, body,
    output_layer)."""

    def __init__(self, widths: tuple[int, ...] = IRSE50_WIDTHS, embedding: int = 512):
        super().__init__()
        self.input_layer = irse_input_layer(widths[0])
        self.body = irse_body(widths)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.Dropout(), nn.Flatten(),
            nn.Linear(widths[-1] * 7 * 7, embedding), nn.BatchNorm1d(embedding, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)

    def embed_face(self, images256: torch.Tensor) -> torch.Tensor:
        """The face region of aligned 256-px images (rows 35:223, columns 32:220), pooled to 112 px."""
        return self(F.adaptive_avg_pool2d(images256[:, :, 35:223, 32:220], (112, 112)))
