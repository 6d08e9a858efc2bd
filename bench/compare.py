"""Speed of stylecli's fast path against the reference formulation, in the same process.

    python bench/compare.py [--repeats 3] [--batch 8] [--no-bf16]

The reference is the textbook formulation the official e4e code uses (grouped modulated convolutions,
out-of-place activations, padded FIR filters), kept in stylecli as a test oracle (Generator.set_reference).
Full FFHQ configuration (1024 px, 18 styles, IR-SE50) with random weights from a fixed seed. Prints JSON:
medians, ratios, deviations, bf16 PSNR, load times, process start time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-bf16", action="store_true")
    args = parser.parse_args()

    from stylecli.checkpoint import ModelConfig, default_opts, save_checkpoint
    from stylecli.loader import load_model
    from stylecli.models.e4e import build_e4e
    from stylecli.pipeline import precision_context, to_uint8

    report: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "config": "FFHQ 1024 px, 18 styles, IR-SE50, random weights (seed 0)"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stylecli", "--help"], capture_output=True, check=True)
    report["help_s"] = time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="stylecli-compare-") as tmp:
        os.environ["STYLECLI_CACHE"] = str(Path(tmp) / "cache")
        torch.manual_seed(0)
        model = build_e4e(1024)
        with torch.no_grad():
            for name, t in model.state_dict().items():  # keep activations in a realistic range
                if name.endswith("modulation.bias"):
                    t.fill_(1.0)
        path = Path(tmp) / "e4e.pt"
        save_checkpoint(model, path, default_opts(ModelConfig(1024, "e4e")))
        del model
        t0 = time.perf_counter()
        load_model(path)
        report["load_first_with_conversion_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded = load_model(path)
        report["load_cached_s"] = time.perf_counter() - t0
        model = loaded.model
        dec = model.decoder

        gen = torch.Generator().manual_seed(1)
        x1 = torch.rand(1, 3, 256, 256, generator=gen) * 2 - 1
        with torch.inference_mode():
            codes = model.encode(x1)
            enc = median_time(lambda: model.encode(x1), args.repeats)
            fast = median_time(lambda: model.synthesize(codes), args.repeats)
            img_fast = model.synthesize(codes)
            dec.set_reference(True)
            ref = median_time(lambda: model.synthesize(codes), args.repeats)
            img_ref = model.synthesize(codes)
            dec.set_reference(False)
        report["rss_after_batch1_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        report["batch1"] = {
            "encode_s": enc, "synthesize_fast_s": fast, "synthesize_reference_s": ref,
            "synthesize_speedup": ref / fast, "encode_plus_synthesize_speedup": (enc + ref) / (enc + fast),
            "fast_vs_reference_max_abs": float((img_fast - img_ref).abs().max()),
        }

        xb = torch.rand(args.batch, 3, 256, 256, generator=gen) * 2 - 1
        with torch.inference_mode():
            codes_b = model.encode(xb)
            t_b = median_time(lambda: model.synthesize(model.encode(xb)), 1)
        per_image_b1 = enc + fast
        report[f"batch{args.batch}"] = {
            "seconds_per_image": t_b / args.batch,
            "throughput_vs_batch1": per_image_b1 / (t_b / args.batch),
        }
        del codes_b

        if not args.no_bf16:
            with torch.inference_mode(), precision_context(torch.device("cpu"), "bf16"):
                enc16 = median_time(lambda: model.encode(x1), 1)
                syn16 = median_time(lambda: model.synthesize(codes), 1)
                codes16 = model.encode(x1).float()
                img16 = model.synthesize(codes).float()
            report["bf16_cpu"] = {
                "encode_s": enc16, "synthesize_s": syn16,
                "latent_max_abs_vs_fp32": float((codes16 - codes).abs().max()),
                "psnr_db_vs_fp32": psnr(to_uint8(img16)[0], to_uint8(img_fast)[0]),
            }
    report["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
