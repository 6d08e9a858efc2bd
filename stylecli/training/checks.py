"""The options of a training run checked before any work: folders, files and registry names that cannot work
are usage errors (exit 2), said before any folder is created or any model is resolved or downloaded."""

from __future__ import annotations

import os
from pathlib import Path

from stylecli.errors import UsageError
from stylecli.files.atomic import unwritable_folder
from stylecli.training.config import TrainConfig

GENERATOR_KINDS = ("generator", "checkpoint")  # registry entries that hold a StyleGAN2 generator
SPECIAL_INITS = ("arcface", "none")


def world_size() -> int:
    """Processes of the run: torchrun's WORLD_SIZE, else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def check_run(config: TrainConfig, resumed: bool = False) -> None:
    """Raise UsageError naming the option and the fix for the first setting of `config` that cannot work.

    `resumed`: the config is a saved run's (its folder exists and holds the run; its encoder comes from the
    checkpoint, not from --encoder-init)."""
    images = image_count(config.data, "--data", resumed)
    world = world_size()
    if images // world < config.batch_size:
        per = f" for {world} processes" if world > 1 else ""
        raise UsageError(f"--data {config.data}: {images} image{'s' * (images != 1)}{per}, fewer than --batch-size "
                         f"{config.batch_size}; give a smaller --batch-size or more images")
    if config.val_data:
        image_count(config.val_data, "--val-data", resumed)
    if not resumed:
        check_out(Path(config.out))
        if config.encoder_init not in SPECIAL_INITS and not Path(config.encoder_init).is_file():
            raise UsageError(f"--encoder-init {config.encoder_init}: no such file (give arcface, none, an IR-SE50 "
                             ".pth or an e4e checkpoint)")
    check_generator(config.generator)


def image_count(folder: str, option: str, resumed: bool = False) -> int:
    """How many images a folder holds (searched recursively); none, or no such folder, is a usage error."""
    from stylecli.files.images import IMAGE_EXTENSIONS, images_in

    path = Path(folder)
    whose = " (the resumed run's)" if resumed else ""
    if not path.exists():
        raise UsageError(f"{option} {folder}{whose}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{option} {folder}{whose}: not a folder; give the folder of the images")
    count = len(images_in(path))
    if count == 0:
        raise UsageError(f"{option} {folder}{whose}: no images in it (looked for "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}); give a folder of aligned face images, or photos "
                         "with --align")
    return count


def check_out(out: Path) -> None:
    """A new run's folder: not a file, not an earlier run (that is --resume), inside a writable folder."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder; give the run folder")
    if (out / "latest.pt").exists():
        raise UsageError(f"--out {out}: holds a run already (latest.pt); continue it with `stylecli train --resume "
                         f"{out}`, or give another --out")
    problem = unwritable_folder(out)
    if problem is not None:
        raise UsageError(f"--out {out}: {problem}; give another --out")


def check_generator(value: str) -> None:
    """A generator file that exists, or a registry name of a generator or checkpoint. A value that looks like a
    path (a suffix such as .pt, or a folder separator) is never taken for a registry name."""
    from stylecli.registry import weights

    path = Path(value)
    if path.is_file():
        return
    if path.exists():
        raise UsageError(f"--generator {value}: a folder; give the generator's .pt file or a registry name")
    if path.suffix or "/" in value or os.sep in value:
        raise UsageError(f"--generator {value}: no such file")
    try:
        entry = weights.get_entry(value)
    except weights.WeightsError as exc:
        raise UsageError(f"--generator {value}: {exc}") from None
    if entry.kind and entry.kind not in GENERATOR_KINDS:
        raise UsageError(f"--generator {value}: the registry's {value} is a {entry.kind}, not a generator "
                         "(stylegan2_ffhq, or an e4e checkpoint such as e4e_ffhq)")
