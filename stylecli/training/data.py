"""Training images: a folder of aligned faces (or photos aligned on the fly), flipped at random, 256 px."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from stylecli.errors import StyleCliError
from stylecli.images import read_image
from stylecli.inputs import expand_inputs
from stylecli.pipeline import preprocess


class ImageFolder(torch.utils.data.Dataset):
    """Items are normalized [3, 256, 256] tensors. The horizontal flip of item i in epoch e is decided by a
    hash of (seed, e, i), so it is the same in every worker and after a resume."""

    def __init__(self, root: Path, flip: bool = True, seed: int = 0, aligner: Any = None):
        self.paths = expand_inputs([str(root)])
        if not self.paths:
            raise StyleCliError(f"{root}: no images found (give a folder of aligned face images)")
        self.flip = flip
        self.seed = seed
        self.epoch = 0
        self.aligner = aligner

    def __len__(self) -> int:
        return len(self.paths)

    def _flipped(self, index: int) -> bool:
        digest = hashlib.sha256(f"{self.seed}:{self.epoch}:{index}".encode()).digest()
        return self.flip and digest[0] % 2 == 1

    def __getitem__(self, index: int) -> torch.Tensor:
        pixels = read_image(self.paths[index]).pixels
        if self.aligner is not None:
            from stylecli.faces import align_crop, select_faces

            (_, face), = select_faces(self.aligner.detect(pixels), "largest", self.paths[index])
            pixels = align_crop(pixels, face.quad)
        x = preprocess(pixels)
        return torch.flip(x, dims=[2]) if self._flipped(index) else x


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """The shuffled order of an epoch (the same on every rank), this rank's share of it."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    return order[rank::world]
