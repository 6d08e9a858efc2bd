"""From a TrainConfig to a running Trainer: the model to train, the loss networks, the images, a resumed state.

This is the library's training entry point (`stylecli train` only parses its options and calls `train`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from stylecli.errors import StyleCliError, UsageError
from stylecli.models.e4e import E4E
from stylecli.training.config import TrainConfig
from stylecli.training.trainer import LossNets, Trainer, TrainImages, init_distributed

Report = Callable[[str], None]


@dataclass
class SavedRun:
    """A run folder's latest checkpoint and the configuration it was trained with."""

    path: Path
    checkpoint: dict[str, Any]
    config: TrainConfig


def load_run(run: Path) -> SavedRun:
    """Read RUN/latest.pt (or a checkpoint file) written by `Trainer.save`."""
    from stylecli.files.checkpoints import read_checkpoint

    path = run / "latest.pt" if run.is_dir() else run
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such checkpoint (give a run folder holding latest.pt, or the .pt "
                         "file)")
    ckpt = read_checkpoint(path)
    saved = (ckpt.get("stylecli_training") or {}).get("config")
    if not isinstance(saved, dict):
        raise UsageError(f"--resume {path}: no training state in the checkpoint (not written by stylecli train)")
    return SavedRun(path, ckpt, replace(TrainConfig.from_dict(saved), out=str(path.parent)))


@contextlib.contextmanager
def run_folder(out: Path) -> Iterator[None]:
    """Around a run: if it fails (or is interrupted) before writing anything, the folders it created for `out`
    are removed again, so that no empty run folder is left behind. Under torchrun only rank 0 cleans up."""
    created = []  # the folders that do not exist yet, deepest first
    probe = Path(out)
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        yield
    except BaseException:
        if created and os.environ.get("RANK", "0") == "0":
            _remove_empty(created)
        raise


def _remove_empty(created: list[Path]) -> None:
    """Remove the empty folders in and among `created` (deepest first); anything holding a file stays."""
    for root, _, _ in os.walk(created[0], topdown=False):  # subfolders first
        with contextlib.suppress(OSError):
            Path(root).rmdir()
    for folder in created[1:]:
        with contextlib.suppress(OSError):
            folder.rmdir()


def training_model(generator: Any, encoder_init: dict[str, Any] | None, mean_latent_samples: int,
                   seed: int = 0, widths: tuple[int, ...] | None = None) -> E4E:
    """An e4e encoder on a frozen generator.

    `encoder_init`: None (random), IR-SE weights (an ArcFace state dict: the backbone starts from them, the style
    blocks are random, the mean latent is that of `mean_latent_samples` mapping-network samples), or an e4e
    checkpoint (`{'state_dict', 'latent_avg'}`: the whole encoder and the mean latent start from it, as the official
    `--checkpoint_path`)."""
    from stylecli.models.e4e import StyleEncoder
    from stylecli.models.irse import IRSE50_FIRST_BLOCKS, IRSE50_WIDTHS

    is_e4e = encoder_init is not None and isinstance(encoder_init.get("state_dict"), dict)
    state = encoder_init
    if is_e4e:
        state = {k[8:]: v for k, v in encoder_init["state_dict"].items() if k.startswith("encoder.")}
    if state is not None:
        try:
            widths = tuple(int(state[f"body.{b}.res_layer.1.weight"].shape[0]) for b in IRSE50_FIRST_BLOCKS)
        except KeyError:
            raise StyleCliError("the encoder's initial weights are not an IR-SE50 backbone") from None
    torch.manual_seed(seed)
    encoder = StyleEncoder(generator.n_latent, "e4e", widths or IRSE50_WIDTHS, generator.style_dim)
    if is_e4e:
        try:
            encoder.load_state_dict(state)
        except RuntimeError as exc:
            raise StyleCliError(f"the e4e checkpoint does not fit this generator: {str(exc).splitlines()[0]}") from None
        return E4E(encoder, generator, encoder_init["latent_avg"].float())
    if state is not None:
        wanted = {k: v for k, v in state.items() if k.startswith(("input_layer.", "body."))}
        absent = [k for k in encoder.state_dict() if k.startswith(("input_layer.", "body.")) and k not in wanted]
        if absent:
            raise StyleCliError(f"the ArcFace weights lack {absent[0]}: not an IR-SE50 backbone")
        encoder.load_state_dict(wanted, strict=False)
    with torch.no_grad():
        mean = generator.mean_latent(mean_latent_samples, torch.Generator().manual_seed(seed))
    return E4E(encoder, generator, mean)


def lpips_alex(device: torch.device, alexnet: dict[str, torch.Tensor] | None = None) -> Callable[..., torch.Tensor]:
    """LPIPS (AlexNet, v0.1 linear layers of the `lpips` package): distance per image of two [-1, 1] batches.
    `alexnet`: torchvision AlexNet weights to use instead of torchvision's download (only `features.*` matter)."""
    if alexnet is None:
        from stylecli.registry.networks import lpips_model

        return lpips_model(device)
    import lpips

    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5, 11: 5}
    feats = {}
    for key, value in alexnet.items():
        parts = key.split(".")
        if parts[0] == "features":
            feats[f"net.slice{slices[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
    missing = [k for k in net.state_dict() if k.startswith("net.") and k not in feats]
    if missing:
        raise StyleCliError(f"the AlexNet weights lack {missing[0]}")
    net.load_state_dict(feats, strict=False)
    net = net.to(device).eval().requires_grad_(False)
    return lambda a, b: net(a, b, normalize=False).flatten()


def loss_nets(config: TrainConfig, device: torch.device, arcface: Path | None = None) -> LossNets:
    """The pretrained networks of the loss terms with a non-zero weight, resolved through the registry."""
    from stylecli.training.losses import FeatureSimilarityLoss

    nets = LossNets()
    if config.lpips_lambda > 0:
        nets.lpips = lpips_alex(device)
    if config.id_lambda > 0:
        from stylecli.registry.networks import arcface_model

        nets.identity = FeatureSimilarityLoss(arcface_model(device, arcface), crop_face=True)
    if config.moco_lambda > 0:
        from stylecli.registry.networks import moco_model

        nets.moco = FeatureSimilarityLoss(moco_model(device), crop_face=False, size=224)
    return nets


def _initial_weights(config: TrainConfig, resume: SavedRun | None) -> tuple[Any, dict[str, Any] | None, Path | None]:
    """(generator, encoder initialisation, ArcFace path) from the registry or local files."""
    from stylecli.encoders.loader import load_generator
    from stylecli.files.checkpoints import read_checkpoint
    from stylecli.registry import weights

    gen_path = Path(config.generator)
    generator = load_generator(gen_path if gen_path.is_file() else weights.resolve(config.generator))
    wants_arcface = config.id_lambda > 0 or (config.encoder_init == "arcface" and resume is None)
    arc_path = weights.resolve("arcface_ir_se50") if wants_arcface else None
    if resume is not None:  # the encoder's architecture, weights and mean latent come from the checkpoint
        init: dict[str, Any] | None = resume.checkpoint
    elif config.encoder_init == "none":
        init = None
    else:
        init = read_checkpoint(arc_path if config.encoder_init == "arcface" else Path(config.encoder_init))
    return generator, init, arc_path


def training_images(config: TrainConfig, report: Report | None = None) -> TrainImages:
    """The training (and validation) images; with config.align, the cached aligned crops of the photos."""
    from stylecli.training.data import aligned_images, image_paths

    train = image_paths(config.data)
    val = image_paths(config.val_data) if config.val_data else None
    if config.align:
        from stylecli.pipeline.editor import FaceEditor

        photos, cache = FaceEditor(None, None, "cpu"), Path(config.out) / "aligned"
        train = aligned_images(train, cache, photos, report)
        val = aligned_images(val, cache, photos, report) if val else None
    return TrainImages(train, val)


def prepare(config: TrainConfig, device: str = "auto", resume: SavedRun | None = None,
            report: Report | None = None) -> Trainer:
    """A Trainer ready to run: weights resolved, images found (and aligned), state resumed when asked."""
    from stylecli.devices import resolve_device

    dist, dev = init_distributed(device)
    dev = dev or resolve_device(device)
    images = training_images(config, report)
    generator, init, arc_path = _initial_weights(config, resume)
    model = training_model(generator, init, config.mean_latent_samples, config.seed)
    trainer = Trainer(config, model, loss_nets(config, dev, arc_path), dev, images=images, dist=dist)
    if resume is not None:
        trainer.resume(resume.checkpoint)
    return trainer
