"""The inversion job: preprocess -> encode -> synthesize, on a chosen device, in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylecli.errors import StyleCliError
from stylecli.loader import LoadedModel, load_model
from stylecli.models.e4e import E4E

ENCODER_INPUT_SIZE = 256


@dataclass
class Inversion:
    code: np.ndarray  # float32 [n_styles, style_dim], mean latent included
    image: np.ndarray | None  # uint8 [size, size, 3], the generator's reconstruction (None: not rendered)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; asking for an absent accelerator is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StyleCliError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    if name == "mps" and not has_mps:
        raise StyleCliError("--device mps: Apple's MPS backend is not available here (use --device cpu or auto)")
    if name not in ("cpu", "cuda", "mps"):
        raise StyleCliError(f"--device {name}: expected auto, cpu, cuda or mps")
    return torch.device(name)


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_context(device: torch.device, precision: str):
    """Autocast for bf16 / fp16 (convolutions and matrix products in low precision); nothing for fp32."""
    import contextlib

    if precision not in PRECISIONS:
        raise StyleCliError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and not cpu_supports(precision):
        raise StyleCliError(
            f"--precision {precision}: this CPU has no native {precision} support (AMX or AVX512-BF16/FP16), where "
            "it runs about 100x slower than fp32; use --precision fp32"
        )
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def cpu_supports(precision: str) -> bool:
    """Whether oneDNN has fast kernels for bf16 / fp16 on this CPU."""
    check = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        return bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError):
        return False


def preprocess(pixels: np.ndarray, size: int = ENCODER_INPUT_SIZE) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, size, size] in [-1, 1]: bilinear resize (Pillow), then (x - 0.5) / 0.5."""
    if pixels.shape[:2] != (size, size):
        from PIL import Image

        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR))
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    return x.sub_(0.5).div_(0.5)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output [B, 3, H, W] -> uint8 [B, H, W, 3] as the official code converts it:
    clamp to [-1, 1], (x + 1) / 2 * 255, truncate."""
    arr = images.detach().float().cpu().clamp(-1, 1).permute(0, 2, 3, 1).numpy()
    return ((arr + 1) / 2 * 255).astype(np.uint8)


class Inverter:
    """An encoder + generator on a device: images -> W+ codes -> reconstructions."""

    def __init__(self, model: E4E, device: str | torch.device = "auto", source: Path | None = None,
                 batch_size: int | None = None, precision: str = "fp32"):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.source = source
        self.batch_size = batch_size or self.default_batch_size
        precision_context(self.device, precision)  # validates the name
        self.precision = precision

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, device: str | torch.device = "auto", **options: Any) -> Inverter:
        """options: batch_size, precision."""
        return cls(loaded.model, device, loaded.source, **options)

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | torch.device = "auto", **options: Any) -> Inverter:
        return cls.from_loaded(load_model(path), device, **options)

    @classmethod
    def from_pretrained(cls, name: str = "e4e_ffhq", device: str | torch.device = "auto", **options: Any) -> Inverter:
        from stylecli import weights

        return cls.from_checkpoint(weights.resolve(name), device, **options)

    @property
    def n_styles(self) -> int:
        return self.model.n_styles

    @property
    def default_batch_size(self) -> int:
        """Faces per model call: larger batches pay on GPUs; on CPUs a few keep memory low."""
        return 8 if self.device.type == "cuda" else 4

    @torch.inference_mode()
    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 images -> W+ codes [B, n_styles, style_dim] (on the model's device)."""
        step = self.batch_size
        chunks = [torch.stack([preprocess(im) for im in images[i : i + step]]).to(self.device)
                  for i in range(0, len(images), step)]
        with precision_context(self.device, self.precision):
            return torch.cat([self.model.encode(x).float() for x in chunks])

    @torch.inference_mode()
    def synthesize(self, codes: torch.Tensor | np.ndarray) -> np.ndarray:
        """W+ codes -> uint8 images [B, size, size, 3], in chunks of batch_size."""
        codes = torch.as_tensor(codes, dtype=torch.float32).to(self.device)
        if codes.ndim == 2:
            codes = codes.unsqueeze(0)
        step = self.batch_size
        with precision_context(self.device, self.precision):
            return np.concatenate([to_uint8(self.model.synthesize(codes[i : i + step]))
                                   for i in range(0, len(codes), step)])

    def code_of(self, item) -> torch.Tensor:
        """The W+ code [1, n_styles, dim] of a runner item: its saved latent, or the encoded image."""
        if item.code is not None:
            code = torch.from_numpy(np.asarray(item.code, dtype=np.float32))[None].to(self.device)
            if code.shape[1] != self.n_styles:
                raise StyleCliError(f"{item.source}: latent has {code.shape[1]} styles but the model uses "
                                    f"{self.n_styles}")
            return code
        return self.encode([item.pixels])

    def invert(self, images: Sequence[np.ndarray]) -> list[Inversion]:
        codes = self.encode(images)
        recon = self.synthesize(codes)
        codes_np = codes.float().cpu().numpy()
        return [Inversion(c, im) for c, im in zip(codes_np, recon)]
