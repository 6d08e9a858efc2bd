"""The README's Usage block, run verbatim and in order in one folder, with a test registry of tiny models
(STYLECLI_WEIGHTS_TOML): the default model is an 18-style generator (what `--layers 8-17` and
`ganspace:white_hair` need) with tiny channels, the directions are tiny files of the registry's names, and the
photos are named as in the README (photo.jpg, group.jpg with two faces, a.jpg, b.jpg, crops/)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import randomize
from helpers import REPO, build_hub_cache, invoke, real_format_pca, write_registry
from PIL import Image
from skimage import data

from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint


def usage_lines(readme: Path = REPO / "README.md") -> list[str]:
    """The command lines of the ```bash block under '## Usage'."""
    text = readme.read_text()
    section = text.split("\n## Usage\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_usage_block_is_found():
    lines = usage_lines()
    assert len(lines) >= 5 and all(line.split()[0] in ("stylecli", "python") for line in lines), lines


def tiny_ffhq_model(path: Path) -> None:
    """An e4e checkpoint of the FFHQ layout (1024 px, 18 styles) with tiny widths: 0.4 s a render on a CPU."""
    channels = {4: 32, 8: 32, 16: 16, 32: 16, 64: 8, 128: 8, 256: 8, 512: 8, 1024: 8}
    config = ModelConfig(size=1024, kind="e4e", style_dim=32, widths=(16, 16, 32, 32), channels=channels, n_mlp=2)
    assert config.n_styles == 18
    torch.manual_seed(0)
    save_checkpoint(randomize(config.build()).eval(), path, default_opts(config))


def registry_of(files: dict[str, tuple[Path, str, str]], hf_home: Path) -> str:
    """TOML entries for NAME -> (file, kind, domain), each served from a Hub cache folder built here; the landmark
    model as the bundled registry has it (embedded in face_recognition_models)."""
    body = ""
    for name, (path, kind, domain) in files.items():
        content = path.read_bytes()
        build_hub_cache(hf_home, f"org/{name}", path.name, content)
        body += (f'[{name}]\nwhat = "test {name}"\nkind = "{kind}"\ndomain = "{domain}"\nfile = "{path.name}"\n'
                 f'license = "test"\nsha256 = "{hashlib.sha256(content).hexdigest()}"\nsize = {len(content)}\n'
                 f'sources = [{{ hf = "org/{name}", path = "{path.name}" }}]\n\n')
    bundled = (REPO / "weights.toml").read_text()
    dlib = "[dlib_landmarks68]" + bundled.split("[dlib_landmarks68]", 1)[1].split("\n[", 1)[0]
    return body + dlib + "\n"


def photos(folder: Path) -> None:
    """photo.jpg, a.jpg and b.jpg (one face each), group.jpg (two faces side by side), crops/ (aligned crops)."""
    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(folder / "photo.jpg", quality=95)
    Image.fromarray(astronaut).save(folder / "a.jpg", quality=95)
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(folder / "b.jpg", quality=95)
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)).save(folder / "group.jpg", quality=95)
    (folder / "crops").mkdir()
    crop = Image.fromarray(astronaut).crop((140, 20, 300, 180)).resize((256, 256), Image.BILINEAR)
    crop.save(folder / "crops" / "crop.png")


@pytest.mark.slow
def test_readme_usage_block_runs_verbatim(tmp_path, monkeypatch, isolated_cache):
    pytest.importorskip("dlib")
    models = tmp_path / "models"
    models.mkdir()
    tiny_ffhq_model(models / "e4e_ffhq_encode.pt")
    gen = torch.Generator().manual_seed(1)
    torch.save(torch.randn(1, 32, generator=gen), models / "age.pt")
    torch.save(torch.randn(1, 32, generator=gen), models / "smile.pt")
    torch.save(torch.randn(1, 18, 32, generator=gen), models / "pose.pt")
    real_format_pca(models / "ffhq_pca.pt", dim=32)
    files = {"e4e_ffhq": (models / "e4e_ffhq_encode.pt", "checkpoint", "ffhq")}
    files.update({name: (models / f"{name}.pt", "direction", "ffhq") for name in ("age", "smile", "pose",
                                                                                  "ffhq_pca")})
    write_registry(tmp_path, monkeypatch, registry_of(files, isolated_cache / "hf"))

    work = tmp_path / "work"
    work.mkdir()
    photos(work)
    monkeypatch.chdir(work)
    for line in usage_lines():
        argv = shlex.split(line, comments=True)
        if argv[0] == "stylecli":
            result = invoke(*argv[1:])
            output, code = result.stdout + result.stderr, result.exit_code
            if "--json" in argv:  # nothing but records on stdout
                assert all(json.loads(r)["ok"] for r in result.stdout.splitlines()), f"{line}\n{output}"
        elif argv[:3] == ["python", "-m", "stylecli"]:
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, env=env, timeout=120)
            output, code = done.stdout + done.stderr, done.returncode
        else:
            pytest.fail(f"README Usage line the test cannot run: {line}")
        assert code == 0, f"{line}\n{output}"
        assert "Traceback" not in output, f"{line}\n{output}"

    # what the lines wrote: the edits in the current folder reused each other's crop and sidecar
    out = work / "out"
    for name in ("photo.npy", "photo_aligned.png", "photo.align.json", "group_face0.npy", "group_face1.npy",
                 "crop.npy"):
        assert (out / name).is_file(), name
    assert (work / "aligned" / "group_face1_aligned.png").is_file()
    for name in ("photo_age+3.png", "photo_age+3_pasted.png", "photo_age_grid.png", "photo_age.gif",
                 "photo_age_0-4.png", "photo_age_8+4.png", "photo_aligned.png", "photo.align.json"):
        assert (work / name).is_file(), name
    assert len(list(work.glob("photo_ganspace*white_hair*.png"))) == 1
    assert (work / "mixed" / "a+b_layers8-17.png").is_file()

    # the install line's last command: the sample photo, edited with the default model
    install = (REPO / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    argv = shlex.split(install.split("&&")[-1])
    assert argv[0].endswith("stylecli") and "sample:astronaut" in argv, install
    result = invoke(*argv[1:])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (work / "out" / "astronaut_age+3_pasted.png").is_file()
