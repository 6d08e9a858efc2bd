"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
REQUIRE_REFERENCE = "STYLECLI_REQUIRE_REFERENCE"

runner = CliRunner()


def invoke(*args, input: str | None = None):
    """Run the CLI in-process with every argument as a string."""
    from stylecli.cli import app

    return runner.invoke(app, [str(a) for a in args], input=input)


def records(result) -> list[dict]:
    """The JSON records a `--json` run printed, one per stdout line."""
    return [json.loads(line) for line in result.stdout.splitlines()]


def shared_reference() -> Path:
    """The reference data folder: $STYLECLI_SHARED/reference, else ../shared/reference beside the repository."""
    return Path(os.environ.get("STYLECLI_SHARED") or REPO.parent / "shared") / "reference"


def reference_dir(name: str, env_var: str | None = None) -> Path:
    """A file or folder of the reference data: `env_var`'s path when set, else shared_reference() / NAME.

    Absent, the calling test is skipped, or fails where STYLECLI_REQUIRE_REFERENCE=1 (CI, which runs with
    ../shared beside the clone: a moved or renamed reference must not turn parity tests into silent skips)."""
    if env_var and os.environ.get(env_var):
        path, where = Path(os.environ[env_var]), f"{env_var}={os.environ[env_var]}"
    else:
        path = shared_reference() / name
        where = str(path) + (f" (or set {env_var})" if env_var else "")
    if path.exists():
        return path
    reason = f"reference data {name!r} is absent: {where}"
    if os.environ.get(REQUIRE_REFERENCE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_REFERENCE}=1 makes this a failure", pytrace=False)
    pytest.skip(reason)


# Small builders of real-format files and stand-ins, used by several modules.

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_registry(tmp_path: Path, monkeypatch, body: str) -> None:
    """A weights registry of TOML `body`, in effect for this test (STYLECLI_WEIGHTS_TOML)."""
    path = tmp_path / "weights.toml"
    path.write_text(body)
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(path))


def build_hub_cache(hf_home: Path, repo: str, filename: str, content: bytes, revision: str = "main") -> Path:
    """The Hub cache layout: blobs/<hash>, snapshots/<commit>/<file> -> blob, refs/<branch> = commit."""
    root = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    blob = root / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(content)
    snap = root / "snapshots" / COMMIT / filename
    snap.parent.mkdir(parents=True)
    snap.symlink_to(blob)
    (root / "refs").mkdir()
    (root / "refs" / revision).write_text(COMMIT)
    return snap


def tiny_arcface(seed: int = 0):
    """A random ArcFace (IR-SE) of tiny widths, in eval mode with unit BN variances."""
    from stylecli.evaluation.metrics import ArcFace

    torch.manual_seed(seed)
    net = ArcFace((16, 16, 32, 32), 24).eval()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_var"):
                t.fill_(1.0)
    return net


def real_format_pca(path: Path, dim: int = 512, n: int = 80, seed: int = 0) -> dict:
    """A GANSpace PCA file in the published format (mean, comp [n, 1, dim], std), saved to `path`."""
    gen = torch.Generator().manual_seed(seed)
    comp = torch.randn(n, 1, dim, generator=gen)
    comp = comp / comp.norm(dim=-1, keepdim=True)
    pca = {"mean": torch.randn(1, dim, generator=gen), "comp": comp, "std": torch.rand(n, generator=gen) + 0.5}
    torch.save(pca, path)
    return pca


def official_ganspace(latent, pca, idx, start, end, strength):
    """The published GANSpace edit, written out for one latent [n, 512] with numpy."""
    mean, comp, std = pca["mean"].numpy(), pca["comp"].numpy(), pca["std"].numpy()
    centred = latent - mean
    coord = float((centred[0].reshape(-1) * comp[idx].reshape(-1)).sum() / std[idx])
    delta = (strength - coord) * comp[idx] * std[idx]
    out = latent.copy()
    out[start:end] += np.repeat(delta, end - start, axis=0)
    return out


class Tuned(torch.nn.Module):
    """An encoder that also returns generator weights (as HyperStyle or PTI do)."""

    def __init__(self, editor):
        super().__init__()
        self.inner = editor.encoder
        self.n_styles = editor.n_styles
        self.inner_weight = editor.generator.state_dict()["to_rgb1.conv.weight"]

    def encode(self, x):
        from stylecli.encoders.base import Encoded

        out = self.inner.encode(x)
        w = self.inner_weight * 0.5
        return Encoded(out.codes, [{"to_rgb1.conv.weight": w} for _ in range(len(x))], [out.codes, out.codes])
