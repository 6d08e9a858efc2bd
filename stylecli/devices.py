"""Where the models run: device choice and low-precision autocast."""

from __future__ import annotations

import contextlib

import torch

from stylecli.errors import StyleCliError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(StyleCliError):
    """An unavailable device or precision: a usage error, said once before any input is read."""

    exit_code = 2


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; asking for an absent accelerator is an error."""
    if isinstance(name, torch.device):
        return name
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    if name == "mps" and not has_mps:
        raise DeviceError("--device mps: Apple's MPS backend is not available here (use --device cpu or auto)")
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"--device {name}: expected auto, cpu, cuda or mps")
    return torch.device(name)


def precision_context(device: torch.device, precision: str):
    """Autocast for bf16 / fp16 (convolutions and matrix products in low precision); nothing for fp32."""
    if precision not in PRECISIONS:
        raise DeviceError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and not cpu_supports(precision):
        raise DeviceError(
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


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timings on CUDA / MPS measure nothing without it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
