"""Where the time goes: FLOPs, achieved GFLOP/s against this CPU's matrix-product peak, and the top operators.

    python bench/where_time_goes.py [--repeats 3]

Full FFHQ configuration (1024 px, 18 styles, IR-SE50), random weights, fp32, batch 1, stylecli's fast path
with its heap policy. Prints JSON. The matrix-product peak is the median rate of a 2048^3 fp32 matmul.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from compare import build_model, median_time

from stylecli.allocator import retain_freed_memory


def matmul_peak_gflops(repeats: int) -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / median_time(lambda: a @ b, max(repeats, 5)) / 1e9


def profile_step(fn, repeats: int, top: int) -> dict:
    from torch.profiler import profile
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    seconds = median_time(fn, repeats)
    with profile() as prof:
        fn()
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_op[event.key] += event.self_cpu_time_total / 1e3
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
    gflop = counter.get_total_flops() / 1e9
    return {"seconds": seconds, "gflop": gflop, "gflops_per_s": gflop / seconds,
            "top_ops_ms": {name: round(ms, 1) for name, ms in ranked}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    retain_freed_memory()
    import torch

    model = build_model().requires_grad_(False)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    start = time.perf_counter()
    peak = matmul_peak_gflops(args.repeats)
    report: dict = {"threads": torch.get_num_threads(), "matmul_peak_gflops_per_s": peak}
    with torch.no_grad():  # (the FLOP counter's module hooks do not work under inference_mode)
        codes = model.encode(x)
        report["encode"] = profile_step(lambda: model.encode(x), args.repeats, args.top)
        report["synthesize"] = profile_step(lambda: model.synthesize(codes), args.repeats, args.top)
    for step in ("encode", "synthesize"):
        report[step]["fraction_of_matmul_peak"] = report[step]["gflops_per_s"] / peak
        report[step]["seconds_at_matmul_peak"] = report[step]["gflop"] / peak
    report["bench_seconds"] = time.perf_counter() - start
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
