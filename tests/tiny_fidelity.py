"""Tiny random ReStyle and HyperStyle models of the real architectures, saved in the official formats."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from stylecli.encoders.formats.hyperstyle import save_hyperstyle
from stylecli.encoders.formats.restyle import save_restyle
from stylecli.models.hyperstyle import DEFAULT_LAYERS_TO_TUNE, HyperNetwork, HyperStyle, WEncoder, generator_layers
from stylecli.models.restyle import BackboneEncoder, ResNetBackboneEncoder, ReStyle
from stylecli.models.stylegan2 import Generator

WIDTHS = (16, 16, 32, 32)  # the squeeze-excite units divide by 16
STYLE_DIM = 32
RESTYLE_CHANNELS = {4: 32, 8: 32, 16: 16, 32: 16}
# HyperStyle's shared layers (0-12) need equal channels up to 64 px, as in the FFHQ generator (512 there).
HYPER_CHANNELS = {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 8}


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Values on the scales of the reference recipe (no layer an identity, activations of order 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        seen: set[int] = set()
        for name, t in module.state_dict(keep_vars=True).items():
            if id(t) in seen or not t.is_floating_point() or name.endswith("kernel"):
                continue
            seen.add(id(t))
            r = torch.randn(t.shape, generator=gen)
            last = name.rsplit(".", 1)[-1]
            fan_in = math.prod(t.shape[1:]) if t.ndim == 4 else 1
            if name.endswith("running_var"):
                v = 1 + 0.1 * r.abs()
            elif name.endswith(("running_mean", "noise.weight")):
                v = 0.1 * r
            elif name.endswith("modulation.bias"):
                v = 1 + 0.1 * r
            elif last in ("w1", "w2", "b1", "b2"):
                v = 0.025 * r
            elif ".output." in name:
                v = 0.05 * r / math.sqrt(t.shape[1]) if last == "weight" else 0.01 * r
            elif last == "bias":
                v = 0.1 * r
            elif "to_rgb" in name and name.endswith("conv.weight"):
                v = 0.2 * r
            elif name.endswith("linear.weight") and not name.startswith("decoder"):
                v = 0.3 * r
            elif t.ndim == 4 and not name.startswith("decoder"):
                v = r / math.sqrt(fan_in)
            elif t.ndim == 1:
                v = 1 + 0.1 * r
            else:
                v = r
            t.copy_(v)
    return module


def tiny_generator(size: int, channels: dict[int, int]) -> Generator:
    return Generator(size, STYLE_DIM, 2, channels={k: v for k, v in channels.items() if k <= size})


def tiny_restyle(backbone: str = "irse", progressive: bool = True, seed: int = 0) -> ReStyle:
    decoder = tiny_generator(32, RESTYLE_CHANNELS)
    cls = BackboneEncoder if backbone == "irse" else ResNetBackboneEncoder
    encoder = cls(decoder.n_latent, 6, progressive, WIDTHS, STYLE_DIM)
    model = ReStyle(encoder, decoder, 0.5 * torch.randn(decoder.n_latent, STYLE_DIM))
    return randomize(model, seed).eval()


RESTYLE_TYPE = {("irse", True): "ProgressiveBackboneEncoder", ("resnet", True): "ResNetProgressiveBackboneEncoder",
                ("irse", False): "BackboneEncoder", ("resnet", False): "ResNetBackboneEncoder"}


def restyle_opts(model: ReStyle, backbone: str = "irse", progressive: bool = True) -> dict:
    return {"encoder_type": RESTYLE_TYPE[(backbone, progressive)], "input_nc": 6, "output_size": model.decoder.size,
            "n_iters_per_batch": 5, "device": "cuda:0", "dataset_type": "ffhq_encode", "start_from_latent_avg": True}


def save_tiny_restyle(path: Path, backbone: str = "irse", progressive: bool = True, seed: int = 0) -> ReStyle:
    model = tiny_restyle(backbone, progressive, seed)
    save_restyle(model, path, restyle_opts(model, backbone, progressive))
    # the training state an official checkpoint also carries
    ckpt = torch.load(path, weights_only=True)
    ckpt.update(global_step=0, best_val_loss=None, optimizer={"state": {}, "param_groups": [{"lr": 1e-4,
                                                                                              "params": [0, 1]}]})
    torch.save(ckpt, path)
    return model


def tiny_hyperstyle(seed: int = 0, layers: tuple[int, ...] = DEFAULT_LAYERS_TO_TUNE) -> HyperStyle:
    decoder = tiny_generator(128, HYPER_CHANNELS)
    shapes = [s for _, s in generator_layers(decoder)]
    tuned = tuple(j for j in layers if j < len(shapes))
    hypernet = HyperNetwork(shapes, tuned, 6, WIDTHS, z_dim=16, shared_size=16, shared_inner=8, inner=8)
    w_encoder = WEncoder(decoder.n_latent, WIDTHS, STYLE_DIM)
    model = HyperStyle(hypernet, decoder, w_encoder, 0.5 * torch.randn(decoder.n_latent, STYLE_DIM))
    return randomize(model, seed).eval()


def hyperstyle_opts(model: HyperStyle, w_encoder_path: Path | None = None) -> dict:
    return {"encoder_type": "SharedWeightsHyperNetResNet", "input_nc": 6, "output_size": model.decoder.size,
            "layers_to_tune": ",".join(map(str, model.hypernet.layers_to_tune)), "n_iters_per_batch": 5,
            "device": "cuda:0", "load_w_encoder": True, "w_encoder_type": "WEncoder",
            "w_encoder_checkpoint_path": "/home/author/pretrained_models/faces_w_encoder.pt"}


def save_tiny_hyperstyle(folder: Path, seed: int = 0, layers: tuple[int, ...] = DEFAULT_LAYERS_TO_TUNE
                         ) -> tuple[HyperStyle, Path, Path]:
    model = tiny_hyperstyle(seed, layers)
    path, w_path = folder / "tiny_hyperstyle.pt", folder / "tiny_w_encoder.pt"
    save_hyperstyle(model, path, hyperstyle_opts(model), w_path)
    return model, path, w_path
