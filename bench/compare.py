"""Speed of stylecli's fast path against the reference formulation, on the same machine in the same run.

    python bench/compare.py [--repeats 5] [--batch 8] [--bf16]

The reference is the textbook formulation the official e4e code uses (grouped modulated convolutions,
out-of-place activations, padded FIR filters, the C library's default heap), kept in stylecli as a test
oracle (Generator.set_reference). Each variant runs in its own process (the heap policy is per process) on
the full FFHQ configuration (1024 px, 18 styles, IR-SE50) with random weights from a fixed seed:

- official_like: reference formulation, default heap (what users of the official code run)
- stylecli:      fast formulation, retained heap (what `stylecli` runs)
- the two crossed variants, to show what the code and the heap policy each contribute;
- official_like_native_fir: as official_like, with the FIR filters computed the way the usual pure-PyTorch
  stand-in for the official CUDA op does it (every channel as its own one-channel image), a closer picture
  of the official code on a CPU. The headline ratios use official_like, the faster of the two baselines.

Prints JSON: medians, ratios, output deviations, load times, process start, one `stylecli invert` on a
cached checkpoint (and its imports alone), peak memory, batch throughput and
(with --bf16, slow on CPUs without native bf16) the bf16 speed and PSNR against fp32.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {  # name: (formulation, heap)
    "official_like": ("reference", "default"),
    "official_like_native_fir": ("reference_native_fir", "default"),
    "stylecli": ("fast", "retained"),
    "reference_retained_heap": ("reference", "retained"),
    "fast_default_heap": ("fast", "default"),
}


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def build_model():
    import torch

    from stylecli.models.e4e import build_e4e

    torch.manual_seed(0)
    model = build_e4e(1024).eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():  # keep activations in a realistic range
            if name.endswith("modulation.bias"):
                t.fill_(1.0)
    return model


def fir_channels_as_batch(x, kernel, up=1, down=1, pad=(0, 0), bias=None):
    """upfirdn2d with every channel run as a separate one-channel image (zero insertion, pad, 1-channel conv)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, 1, w, 1)
    y = F.pad(y, [0, up - 1, 0, 0, 0, up - 1]).reshape(n * c, 1, h * up, w * up)
    p0, p1 = pad
    y = F.pad(y, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    y = y[:, :, max(-p0, 0) : y.shape[2] - max(-p1, 0), max(-p0, 0) : y.shape[3] - max(-p1, 0)]
    y = F.conv2d(y, torch.flip(kernel, [0, 1]).view(1, 1, *kernel.shape))[:, :, ::down, ::down]
    y = y.reshape(n, c, *y.shape[-2:])
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def worker(formulation: str, heap: str, out: Path, repeats: int, batch: int, bf16: bool) -> None:
    """One variant: time encode and synthesize at batch 1 (and batch `batch`); save the outputs to `out`."""
    if heap == "retained":
        from stylecli.allocator import retain_freed_memory

        assert retain_freed_memory(), "the heap policy could not be applied here"
    import torch

    if formulation == "reference_native_fir":
        from stylecli.models import stylegan2

        stylegan2.upfirdn2d = fir_channels_as_batch
    model = build_model()
    model.decoder.set_reference(formulation.startswith("reference"))
    gen = torch.Generator().manual_seed(1)
    x1 = torch.rand(1, 3, 256, 256, generator=gen) * 2 - 1
    report: dict = {}
    with torch.inference_mode():
        codes = model.encode(x1)
        report["encode_s"] = median_time(lambda: model.encode(x1), repeats)
        report["synthesize_s"] = median_time(lambda: model.synthesize(codes), repeats)
        image = model.synthesize(codes)
        report["peak_rss_batch1_gb"] = peak_rss_gb()
        if formulation == "fast" and batch > 1:
            xb = torch.rand(batch, 3, 256, 256, generator=gen) * 2 - 1
            per_image = median_time(lambda: model.synthesize(model.encode(xb)), 1) / batch
            report[f"batch{batch}_seconds_per_image"] = per_image
            report[f"batch{batch}_throughput_vs_batch1"] = (report["encode_s"] + report["synthesize_s"]) / per_image
    if bf16 and formulation == "fast":
        from stylecli.pipeline.editor import precision_context, to_uint8

        with torch.inference_mode(), precision_context(torch.device("cpu"), "bf16"):
            report["bf16_encode_s"] = median_time(lambda: model.encode(x1), 1)
            report["bf16_synthesize_s"] = median_time(lambda: model.synthesize(codes), 1)
            image16 = model.synthesize(codes).float()
        a, b = to_uint8(image16)[0].astype("float64"), to_uint8(image)[0].astype("float64")
        mse = float(((a - b) ** 2).mean())
        report["bf16_psnr_db_vs_fp32"] = float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
    torch.save({"codes": codes, "image": image}, out)
    print(json.dumps(report))


def run_variant(name: str, tmp: Path, args: argparse.Namespace) -> dict:
    formulation, heap = VARIANTS[name]
    cmd = [sys.executable, __file__, "--worker", formulation, heap, str(tmp / f"{name}.pt"),
           "--repeats", str(args.repeats), "--batch", str(args.batch if name == "stylecli" else 1)]
    if args.bf16 and name == "stylecli":
        cmd.append("--bf16")
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_times(tmp: Path) -> dict:
    from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint
    from stylecli.encoders.loader import load_model

    os.environ["STYLECLI_CACHE"] = str(tmp / "cache")
    path = tmp / "e4e.pt"
    save_checkpoint(build_model(), path, default_opts(ModelConfig(1024, "e4e")))
    start = time.perf_counter()
    load_model(path)
    first = time.perf_counter() - start
    start = time.perf_counter()
    load_model(path)
    return {"load_first_with_conversion_s": first, "load_cached_s": time.perf_counter() - start}


def cli_one_image(tmp: Path) -> dict:
    """`stylecli invert` on one 256 px face with the cached checkpoint, and what its imports alone cost."""
    import numpy as np
    from PIL import Image

    face = tmp / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(face)
    cmd = [sys.executable, "-m", "stylecli", "invert", str(face), "--no-align", "--checkpoint", str(tmp / "e4e.pt"),
           "-o", str(tmp / "cli"), "--overwrite", "--quiet"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    total = time.perf_counter() - start
    start = time.perf_counter()
    imports = "import torch, stylecli.pipeline.editor, stylecli.encoders.loader"
    subprocess.run([sys.executable, "-c", imports], check=True)
    return {"cli_invert_one_image_cached_s": total, "cli_imports_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (very slow without AMX)")
    parser.add_argument("--worker", nargs=3, metavar=("FORMULATION", "HEAP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        formulation, heap, out = args.worker
        worker(formulation, heap, Path(out), args.repeats, args.batch, args.bf16)
        return

    import torch

    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "config": "FFHQ 1024 px, 18 styles, IR-SE50, random weights (seed 0), fp32, batch 1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stylecli", "--help"], capture_output=True, check=True)
    report["help_s"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="stylecli-compare-") as tmp_name:
        tmp = Path(tmp_name)
        report.update(load_times(tmp))
        report.update(cli_one_image(tmp))
        variants = {name: run_variant(name, tmp, args) for name in VARIANTS}
        outputs = {name: torch.load(tmp / f"{name}.pt", weights_only=True) for name in VARIANTS}
    report["variants"] = variants
    ours = variants["stylecli"]
    for baseline in ("official_like", "official_like_native_fir"):
        ref = variants[baseline]
        report[f"speedup_vs_{baseline}"] = {
            "synthesize": ref["synthesize_s"] / ours["synthesize_s"],
            "encode": ref["encode_s"] / ours["encode_s"],
            "encode_plus_synthesize":
                (ref["encode_s"] + ref["synthesize_s"]) / (ours["encode_s"] + ours["synthesize_s"]),
        }
    base = outputs["official_like"]
    report["max_abs_vs_official_like"] = {
        name: {"codes": float((out["codes"] - base["codes"]).abs().max()),
               "image": float((out["image"] - base["image"]).abs().max())}
        for name, out in outputs.items() if name != "official_like"
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
