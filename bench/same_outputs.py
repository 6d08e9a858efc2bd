"""Do the commands still write the same files? Byte-for-byte hashes of every output of a fixed set of commands.

Outputs depend on the CPU's kernels, so there are no committed golden hashes: run it on one machine before and
after a change and compare the two JSON files.

    python bench/same_outputs.py make /tmp/same            # tiny models and photos (once, with the code before)
    python bench/same_outputs.py run /tmp/same before.json # every command; prints the hashes as JSON
    ... change the code ...
    python bench/same_outputs.py run /tmp/same after.json
    python bench/same_outputs.py compare before.json after.json

Run both in the same folder: the alignment sidecars record the photo's absolute path.

`make` builds tiny random models of the real architectures (e4e, ReStyle, HyperStyle) in their official
formats with the test suite's helpers, a real photo (scikit-image's astronaut), an aligned crop and direction
files. `run` calls the CLI in a fresh process per command, offline; `--tune` uses a deterministic stand-in for
LPIPS (the mean absolute pixel difference), as the browser editor's tests do, because the real AlexNet would be
downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI with LPIPS replaced by a pixel distance wherever the loader lives (its module may move).
DRIVER = """
import importlib, sys
import torch
def stand_in(device):
    return lambda a, b: (a - b).abs().mean(dim=(1, 2, 3))
for name in ("stylecli.metric_nets", "stylecli.registry.networks"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    if hasattr(module, "lpips_model"):
        module.lpips_model = stand_in
from stylecli.cli import main
sys.argv = ["stylecli"] + sys.argv[1:]
main()
"""


def make(folder: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import default_opts, save_checkpoint, tiny_config, tiny_model  # noqa: PLC0415
    from tiny_fidelity import save_tiny_hyperstyle, save_tiny_restyle  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(tiny_model(), folder / "e4e.pt", default_opts(tiny_config()))
    save_tiny_restyle(folder / "restyle.pt")
    save_tiny_hyperstyle(folder)
    Image.fromarray(data.astronaut()).save(folder / "photo.png")
    Image.fromarray(data.astronaut()).crop((140, 20, 300, 180)).resize((256, 256), Image.BILINEAR).save(
        folder / "face.png")
    gen = torch.Generator().manual_seed(1)
    np.save(folder / "dir.npy", torch.randn(1, 32, generator=gen).numpy())
    np.save(folder / "keep.npy", torch.randn(1, 32, generator=gen).numpy())


def commands(d: Path) -> dict[str, list[str]]:
    e4e = ["--checkpoint", str(d / "e4e.pt")]
    restyle = ["--checkpoint", str(d / "restyle.pt")]
    hyper = ["--checkpoint", str(d / "tiny_hyperstyle.pt"), "--w-encoder", str(d / "tiny_w_encoder.pt")]
    photo, face = str(d / "photo.png"), str(d / "face.png")
    tune = ["--tune", "--tune-steps", "3", "--tune-lr", "1e-2", "--tune-lpips-stop", "0"]
    return {
        "invert": ["invert", photo, *e4e],
        "invert_noalign": ["invert", face, "--no-align", *e4e],
        "align_all": ["align", photo, "--faces", "all"],
        "edit_paste": ["edit", photo, *e4e, "-d", str(d / "dir.npy"), "-s", "3", "--paste-back"],
        "edit_keep": ["edit", face, "--no-align", *e4e, "-d", str(d / "dir.npy"), "-s", "2",
                      "--keep", str(d / "keep.npy")],
        "edit_sweep": ["edit", face, "--no-align", *e4e, "-d", "sefa:1", "--sweep", "-2:2:3", "--grid", "--gif"],
        "edit_layers": ["edit", face, "--no-align", *e4e, "-d", "sefa:0", "-s", "3", "--layers", "0-3",
                        "--save-latent"],
        "mix": ["mix", face, photo, *e4e, "--layers", "4-7"],
        "restyle": ["invert", face, "--no-align", *restyle, "--steps", "3", "--save-steps"],
        "restyle_edit": ["edit", photo, *restyle, "-d", "sefa:2", "-s", "2", "--paste-back"],
        "hyperstyle": ["invert", face, "--no-align", *hyper, "--steps", "2"],
        "hyperstyle_edit": ["edit", face, "--no-align", *hyper, "-d", "sefa:1", "-s", "2", "--save-latent"],
        "tune": ["invert", face, "--no-align", *e4e, *tune],
        "tune_edit": ["edit", photo, *e4e, *tune, "-d", "sefa:0", "-s", "2", "--paste-back"],
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tensor_sums(path: Path) -> dict[str, float]:
    """Tuned weights: the tensors' sums (tuning's backward pass is not bit-deterministic across runs in torch)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return {k: float(f.get_tensor(k).double().abs().sum()) for k in f.keys()}  # noqa: SIM118 - not a dict


def run(folder: Path, out_json: Path) -> None:
    results: dict[str, dict] = {}
    env = dict(os.environ, HF_HUB_OFFLINE="1", STYLECLI_CACHE=str(folder / "cache"), HF_HOME=str(folder / "hf"))
    for name, args in commands(folder).items():
        out = folder / "out" / name
        shutil.rmtree(out, ignore_errors=True)
        # the working folder is the output folder: outputs without -o land there too
        out.mkdir(parents=True)
        proc = subprocess.run([sys.executable, "-c", DRIVER, *args, "-o", str(out), "-q"], env=env, cwd=out,
                              capture_output=True, text=True)
        files = {p.relative_to(out).as_posix(): sha(p) for p in sorted(out.rglob("*")) if p.is_file()}
        sums = {p.relative_to(out).as_posix(): tensor_sums(p) for p in sorted(out.rglob("*.safetensors"))}
        results[name] = {"exit": proc.returncode, "files": files, "tensor_sums": sums,
                         "stderr": proc.stderr.strip().splitlines()[-3:]}
    out_json.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(json.dumps({k: {"exit": v["exit"], "files": len(v["files"])} for k, v in results.items()}))


def close(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    """Tensor sums within 1e-4 relative (tuned weights only; every other file must match byte for byte)."""
    if not a or not b or set(a) != set(b):
        return False
    return all(abs(a[k] - b[k]) <= 1e-4 * max(abs(a[k]), 1.0) for k in a)


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    report = {}
    for name in sorted(set(a) | set(b)):
        fa, fb = a.get(name, {}).get("files", {}), b.get(name, {}).get("files", {})
        sa, sb = a.get(name, {}).get("tensor_sums", {}), b.get(name, {}).get("tensor_sums", {})
        changed = sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k] and not close(sa.get(k), sb.get(k)))
        report[name] = {"same": not changed and set(fa) == set(fb), "changed": changed,
                        "only_before": sorted(set(fa) - set(fb)), "only_after": sorted(set(fb) - set(fa)),
                        "files": len(fb)}
    print(json.dumps(report, indent=1))
    return 0 if all(r["same"] for r in report.values()) else 1


if __name__ == "__main__":
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb == "make" and len(sys.argv) == 3:
        make(Path(sys.argv[2]))
    elif verb == "run" and len(sys.argv) == 4:
        run(Path(sys.argv[2]), Path(sys.argv[3]))
    elif verb == "compare" and len(sys.argv) == 4:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
