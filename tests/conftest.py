"""Shared fixtures: tiny random models of the real architectures, saved in the real checkpoint format."""

from __future__ import annotations

import os
import shutil
import tempfile

# Offline and isolated before anything imports huggingface_hub (it reads these at import time); the folders made
# here are removed when the session ends (pytest_unconfigure).
os.environ["HF_HUB_OFFLINE"] = "1"
_SESSION_FOLDERS: list[str] = []
for _var, _prefix in (("HF_HOME", "stylecli-hf-"), ("STYLECLI_CACHE", "stylecli-cache-")):
    if not os.environ.get(_var):
        os.environ[_var] = tempfile.mkdtemp(prefix=_prefix)
        _SESSION_FOLDERS.append(os.environ[_var])

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint  # noqa: E402
from stylecli.models.e4e import E4E  # noqa: E402

TINY_CHANNELS = {4: 32, 8: 32, 16: 16, 32: 16}


def tiny_config(kind: str = "e4e", size: int = 32) -> ModelConfig:
    channels = {k: v for k, v in TINY_CHANNELS.items() if k <= size}
    return ModelConfig(size=size, kind=kind, style_dim=32, widths=(16, 16, 32, 32), channels=channels, n_mlp=2)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every tensor (BN statistics included) random values so that no layer is an identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or name.endswith("kernel"):
                continue
            noise = torch.randn(t.shape, generator=gen)
            if name.endswith("running_var"):
                t.copy_(1 + 0.1 * noise.abs())
            elif name.endswith(("modulation.bias",)):
                t.copy_(1 + 0.1 * noise)
            elif name.endswith(("bias", "running_mean", "noise.weight")):
                t.copy_(0.1 * noise)
            elif t.ndim == 1:
                t.copy_(1 + 0.1 * noise)
            elif t.ndim == 4 and name.startswith("encoder."):
                t.copy_(noise / np.sqrt(t[0].numel()))
            else:
                t.copy_(noise)
    return model


def tiny_model(kind: str = "e4e", seed: int = 0, size: int = 32) -> E4E:
    model = randomize(tiny_config(kind, size).build(), seed)
    return model.eval()


def pytest_unconfigure(config) -> None:
    for folder in _SESSION_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own stylecli cache and Hub cache."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("STYLECLI_CACHE", str(root / "stylecli"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("STYLECLI_WEIGHTS_TOML", raising=False)
    return root


@pytest.fixture(scope="session")
def session_files(tmp_path_factory) -> Path:
    """The files that tiny_checkpoint and face_png copy (made once: the same bytes for every test)."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("session_files")
    save_checkpoint(tiny_model(), root / "tiny_e4e.pt", default_opts(tiny_config()))
    img = Image.fromarray(data.astronaut()).crop((140, 20, 300, 180)).resize((256, 256), Image.BILINEAR)
    img.save(root / "face.png")
    return root


@pytest.fixture
def tiny_checkpoint(tmp_path, session_files) -> Path:
    """An official-format e4e checkpoint of a tiny 32-px configuration (the test's own copy)."""
    return Path(shutil.copyfile(session_files / "tiny_e4e.pt", tmp_path / "tiny_e4e.pt"))


@pytest.fixture
def face_png(tmp_path, session_files) -> Path:
    """A real photo (scikit-image's astronaut), cropped around the face and resized to 256x256 (the test's copy)."""
    return Path(shutil.copyfile(session_files / "face.png", tmp_path / "face.png"))


def shifted_faces(folder: Path, face_png: Path, count: int, step: int, prefix: str, axis: int = 1) -> Path:
    """`count` distinct aligned crops (the face rolled by `step` pixels each time), named PREFIX0.png, ..."""
    from PIL import Image

    folder.mkdir(parents=True)
    src = np.asarray(Image.open(face_png))
    width = len(str(count - 1)) if count > 10 else 1
    for i in range(count):
        Image.fromarray(np.roll(src, step * i, axis=axis)).save(folder / f"{prefix}{i:0{width}d}.png")
    return folder


@pytest.fixture
def offline_lpips(monkeypatch):
    """The real LPIPS heads on a random AlexNet backbone (torchvision's pretrained one would be downloaded)."""
    import warnings

    lpips = pytest.importorskip("lpips")
    from stylecli.models.lpips import LPIPSDistance

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval().requires_grad_(False)
    monkeypatch.setattr("stylecli.registry.networks.lpips_model", lambda device: LPIPSDistance(net))
