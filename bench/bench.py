"""Benchmark the full FFHQ configuration (1024 px generator, 18 styles, IR-SE50) with random weights.

    python bench/bench.py [--repeats 3] [--batch 1 4] [--threads N]

Prints one JSON document: checkpoint load times (official .pt, first load with conversion, cached
safetensors copy), median encode and synthesize seconds per call and per image, and peak RSS. The heap policy
the CLI applies (stylecli.allocator) is applied here too; STYLECLI_KEEP_HEAP=0 measures without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from stylecli.allocator import retain_freed_memory

    retain_freed_memory()

    with tempfile.TemporaryDirectory(prefix="stylecli-bench-") as tmp:
        os.environ["STYLECLI_CACHE"] = str(Path(tmp) / "cache")
        from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint
        from stylecli.encoders.loader import load_model
        from stylecli.files.checkpoints import read_checkpoint
        from stylecli.models.e4e import build_e4e

        torch.manual_seed(0)
        model = build_e4e(1024)
        ckpt_path = Path(tmp) / "e4e_ffhq_random.pt"

        save_checkpoint(model, ckpt_path, default_opts(ModelConfig(1024, "e4e")))
        del model
        report: dict = {
            "config": "FFHQ 1024 px, 18 styles, IR-SE50, random weights, float32",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or "",
            "checkpoint_bytes": ckpt_path.stat().st_size,
        }
        report["load_pt_read_s"] = timed(lambda: read_checkpoint(ckpt_path), 1)[0]
        start = time.perf_counter()
        first = load_model(ckpt_path)
        report["load_pt_first_with_conversion_s"] = time.perf_counter() - start
        assert not first.from_cache
        del first
        start = time.perf_counter()
        loaded = load_model(ckpt_path)
        report["load_cached_safetensors_s"] = time.perf_counter() - start
        assert loaded.from_cache
        start = time.perf_counter()
        loaded_pt = load_model(ckpt_path, use_cache=False)
        report["load_pt_no_cache_s"] = time.perf_counter() - start
        del loaded_pt

        model = loaded.model
        for batch in args.batch:
            x = torch.randn(batch, 3, 256, 256)
            with torch.inference_mode():
                codes = model.encode(x)  # warm-up (also pages the weights in)
                model.synthesize(codes)
                enc = timed(lambda x=x: model.encode(x), args.repeats)
                syn = timed(lambda c=codes: model.synthesize(c), args.repeats)
            report[f"batch{batch}"] = {
                "encode_s": statistics.median(enc), "synthesize_s": statistics.median(syn),
                "encode_s_per_image": statistics.median(enc) / batch,
                "synthesize_s_per_image": statistics.median(syn) / batch,
                "images_per_s": batch / (statistics.median(enc) + statistics.median(syn)),
            }
        report["peak_rss_gb"] = peak_rss_gb()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
