"""The weights registry lives at the repository's top level and travels inside the package when built."""

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from stylecli.registry import weights

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ROOT / "weights.toml"


def test_source_checkout_reads_the_top_level_registry():
    assert weights.REGISTRY_FILE == TOP_LEVEL
    assert not (ROOT / "stylecli" / "weights.toml").exists(), "one registry, at the top level"
    assert weights.load_registry() == weights.load_registry(TOP_LEVEL)


def _copy_source(dest: Path) -> Path:
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "weights.toml"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "stylecli", dest / "stylecli", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _run(*args: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_sdist_and_wheel_carry_the_registry(tmp_path):
    """sdist -> wheel (as `python -m build` does; `pip install .` builds the wheel from the tree the same way),
    then the unpacked wheel, imported from elsewhere, reads the packaged copy, equal to the top-level file, also
    when it was unpacked into a project folder with a pyproject.toml and weights.toml of its own (as
    `pip install --target` into a project does)."""
    pytest.importorskip("setuptools", minversion="68")
    src = _copy_source(tmp_path / "src")
    sdist = _run(sys.executable, "-c", "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))",
                 str(tmp_path / "dist"), cwd=src).strip().splitlines()[-1]
    with tarfile.open(tmp_path / "dist" / sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    assert (unpacked / "weights.toml").read_bytes() == TOP_LEVEL.read_bytes()
    assert (unpacked / "stylecli" / "samples" / "astronaut.jpg").is_file()

    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "wheels"), str(unpacked), cwd=tmp_path)
    wheel = next((tmp_path / "wheels").glob("stylecli-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("stylecli/weights.toml") == TOP_LEVEL.read_bytes()
        for name in ("astronaut.jpg", "README.txt"):  # the sample photos and their license travel too
            assert zf.read(f"stylecli/samples/{name}") == (ROOT / "stylecli" / "samples" / name).read_bytes()
        zf.extractall(tmp_path / "site")

    (tmp_path / "site" / "pyproject.toml").write_text('[project]\nname = "someone-elses-project"\n')
    (tmp_path / "site" / "weights.toml").write_text('[unrelated]\nfile = "x.bin"\n')
    shown = _run(sys.executable, "-c", "from stylecli.registry import weights; print(weights.REGISTRY_FILE); "
                 "print(len(weights.load_registry()))", cwd=tmp_path, PYTHONPATH=str(tmp_path / "site"))
    path, count = shown.split()
    assert Path(path) == tmp_path / "site" / "stylecli" / "weights.toml"
    sample = _run(sys.executable, "-c", "from stylecli.samples import resolve_sample; "
                  "print(resolve_sample('sample:astronaut'))", cwd=tmp_path, PYTHONPATH=str(tmp_path / "site"))
    assert Path(sample.strip()) == tmp_path / "site" / "stylecli" / "samples" / "astronaut.jpg"
    assert int(count) == len(weights.load_registry(TOP_LEVEL))
