"""Training images: a folder of aligned faces (or photos aligned once and cached), loaded by a torch DataLoader.

The order of every epoch is a seeded permutation and each image's horizontal flip a hash of (seed, epoch, index),
so the batches depend only on the seed and the position in the run: a resumed run continues with exactly the
batch the interrupted one would have used next, whatever the number of worker processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecli.convert import preprocess
from stylecli.errors import InputError, StyleCliError
from stylecli.files.images import images_in, read_image

Key = tuple[int, int]  # (epoch, index): what the sampler hands to the dataset


def image_paths(root: str | Path) -> list[Path]:
    paths = images_in(Path(root)) if Path(root).is_dir() else [Path(root)]
    if not paths:
        raise StyleCliError(f"{root}: no images found (give a folder of aligned face images, or add --align)")
    return paths


class ImageFolder(torch.utils.data.Dataset):
    """Items are normalized [3, 256, 256] tensors; item (epoch, i) is image i, flipped when the hash says so."""

    def __init__(self, paths: list[Path], flip: bool = True, seed: int = 0):
        self.paths = list(paths)
        self.flip = flip
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def flipped(self, epoch: int, index: int) -> bool:
        digest = hashlib.sha256(f"{self.seed}:{epoch}:{index}".encode()).digest()
        return self.flip and digest[0] % 2 == 1

    def __getitem__(self, key: Key | int) -> torch.Tensor:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        x = preprocess(read_image(self.paths[index]).pixels)
        return torch.flip(x, dims=[2]) if self.flipped(epoch, index) else x


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The order of the images in an epoch: a permutation drawn from (seed, epoch), or file order."""
    if not shuffle:
        return list(range(n))
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


@dataclass
class Position:
    """Where a run is in its data: the epoch, and how many of this rank's items of it were used."""

    epoch: int = 0
    used: int = 0


class EpochBatches(torch.utils.data.Sampler):
    """Endless batches of (epoch, index) keys from a position on: each epoch's order split among the ranks, then
    cut into full batches (the last partial batch of an epoch is dropped, as the official loader does)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: Position, shuffle: bool = True,
                 rank: int = 0, world: int = 1):
        if n // world < batch_size:
            raise StyleCliError(f"fewer training images per process ({n // world}) than --batch-size {batch_size}")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.start, self.rank, self.world = Position(start.epoch, start.used), rank, world

    def per_epoch(self) -> int:
        """Items of each epoch this rank uses (full batches only)."""
        share = self.n // self.world  # the same on every rank: all ranks take the same number of steps
        return share - share % self.batch_size

    def advance(self, position: Position) -> Position:
        """The position after one more batch."""
        used = position.used + self.batch_size
        return Position(position.epoch + 1, 0) if used >= self.per_epoch() else Position(position.epoch, used)

    def __iter__(self) -> Iterator[list[Key]]:
        pos = self.start
        while True:
            order = epoch_order(self.n, self.seed, pos.epoch, self.shuffle)[self.rank :: self.world]
            yield [(pos.epoch, i) for i in order[pos.used : pos.used + self.batch_size]]
            pos = self.advance(pos)


def batch_loader(dataset: ImageFolder, sampler: EpochBatches, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader over the sampler's batches. It gets its own generator so that starting it never draws from
    the global RNG (the training draws generator noise from it: a resumed run must see the same numbers)."""
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                       generator=torch.Generator().manual_seed(0),
                                       persistent_workers=False, pin_memory=False)


def aligned_images(paths: list[Path], cache: Path, photos: Any,
                   report: Callable[[str], None] | None = None) -> list[Path]:
    """Detect and align the largest face of each photo once, through the pipeline's sources (`photos`: a FaceEditor,
    models not needed); the 256-px crops are cached (PNG, lossless) under `cache`, keyed by the photo's path, size
    and modification time. Photos without a face are left out (and reported); returns the crops' paths in the
    photos' order."""
    from stylecli.files.images import write_png
    from stylecli.pipeline.sources import open_source

    crops, skipped = [], []
    for path in paths:
        stat = path.stat()
        key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:24]
        crop, none = cache / f"{key}.png", cache / f"{key}.noface"
        if not crop.is_file() and not none.is_file():
            photo = photos.read(path)  # an unreadable photo stops the run; a photo without a face is left out
            try:
                write_png(open_source(photos, photo).faces[0].crop, crop, overwrite=True)
            except InputError:
                none.parent.mkdir(parents=True, exist_ok=True)
                none.write_text(f"{path}\n")
        if crop.is_file():
            crops.append(crop)
        else:
            skipped.append(path)
    if skipped and report is not None:
        report(f"{len(skipped)} of {len(paths)} training photos have no face and are left out (first: {skipped[0]})")
    if not crops:
        raise StyleCliError(f"no face found in any of the {len(paths)} training photos")
    return crops
