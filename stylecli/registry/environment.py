"""What `stylecli env` reports: versions, devices, where files are kept, which registry files are here. Reads
package versions from their metadata (nothing heavy is imported but torch, for the devices)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

# (name shown, distributions that provide it: the first installed one is reported)
PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stylecli", ("stylecli",)),
    ("torch", ("torch",)),
    ("torchvision", ("torchvision",)),
    ("numpy", ("numpy",)),
    ("pillow", ("pillow", "Pillow")),
    ("safetensors", ("safetensors",)),
    ("huggingface_hub", ("huggingface_hub", "huggingface-hub")),
    ("typer", ("typer",)),
    ("dlib", ("dlib-bin", "dlib")),
    ("face_recognition_models", ("face-recognition-models", "face_recognition_models")),
    ("scipy", ("scipy",)),
    ("opencv", ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
                "opencv-contrib-python")),
    ("lpips", ("lpips",)),
    ("pytorch_msssim", ("pytorch-msssim", "pytorch_msssim")),
    ("scikit-learn", ("scikit-learn",)),
    ("gradio", ("gradio",)),
)


def package_versions() -> dict[str, str | None]:
    """Each package's installed version, None when it is not installed."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for shown, dists in PACKAGES:
        versions[shown] = None
        for dist in dists:
            try:
                versions[shown] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    if versions["stylecli"] is None:  # a source checkout on PYTHONPATH: no metadata
        from stylecli import __version__

        versions["stylecli"] = __version__
    return versions


def devices() -> dict[str, Any]:
    """The devices torch sees, and the one `--device auto` picks."""
    import torch

    cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
        else []
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    return {"auto": "cuda" if cuda else "mps" if has_mps else "cpu", "cuda": cuda, "mps": has_mps,
            "cuda_build": torch.version.cuda, "cpu_threads": torch.get_num_threads()}


def environment() -> dict[str, Any]:
    """Everything `stylecli env` prints, as one JSON-ready object."""
    from stylecli.registry import weights
    from stylecli.registry.cache import cache_dir

    files = {}
    for entry in weights.load_registry().values():
        row = weights.status(entry)
        files[entry.name] = row["path"]
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "devices": devices(),
        "paths": {
            "cache": str(cache_dir()),
            "hub_cache": str(weights.hub_cache_dir()),
            "registry": str(weights.registry_path()),
        },
        "hub_offline": weights.hub_offline(),
        "environment": {k: os.environ[k] for k in ("STYLECLI_CACHE", "STYLECLI_WEIGHTS_TOML", "HF_HOME",
                                                   "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TORCH_HOME")
                        if k in os.environ},
        "registry_files": files,  # name -> its path on this machine, or None
    }
