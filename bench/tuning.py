"""Pivotal tuning: cost of one step at full size, how many steps a fit takes, and what storing costs.

    python bench/tuning.py [--steps 3] [--fit-size 256] [--fit-steps 350] [--skip-fit]

Step timing runs the full FFHQ generator (1024 px, 18 styles, random weights from a fixed seed) on a target
rendered by a perturbed copy from another code; each variant in its own process (the heap policy is per
process; peak memory is the process's maximum resident size):

- fast_retained_heap:     the fast generator path under autograd, freed memory kept (what `stylecli` runs)
- fast_default_heap:      the same with the C library's default heap
- reference_retained_heap: the textbook (grouped-convolution) formulation

A step is PTI's: generator forward at the pivot, MSE + LPIPS (AlexNet) at full resolution, backward, Adam.
The worker also times the parts of a step and the optimizer alone (default, foreach and fused Adam).

The fit runs PTI's recipe (lr 3e-4, up to --fit-steps) on a smaller generator with FFHQ's channel widths and
reports the steps until LPIPS <= 0.06. LPIPS uses torchvision's pretrained AlexNet when it is cached
($TORCH_HOME/hub/checkpoints), else a random AlexNet backbone under the real LPIPS heads: its values are not
on the real scale, so the fit also reports the steps to reach 0.06 / 0.197 of the pivot's LPIPS (0.197 is e4e's
LPIPS on CelebA-HQ, the start PTI's threshold is measured against). It also saves the tuned weights as stylecli
stores them and measures the file and the rendering error of the stored form against the in-memory weights.

Prints JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

VARIANTS = {"fast_retained_heap": ("fast", True), "fast_default_heap": ("fast", False),
            "reference_retained_heap": ("reference", True)}
RELATIVE_STOP = 0.06 / 0.197


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def lpips_fn():
    """(function, 'pretrained' | 'random backbone')."""
    import torch

    from stylecli.registry.networks import lpips_model

    if (Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file():
        return lpips_model(torch.device("cpu")), "pretrained"
    else:  # never download from a benchmark
        import lpips

        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval().requires_grad_(False)
        return (lambda a, b: net(a, b).flatten()), "random backbone"


def problem(size: int, seed: int = 0):
    """A random generator, a pivot code, and a target from another code through perturbed weights."""
    import torch

    from stylecli.models.stylegan2 import Generator

    torch.manual_seed(seed)
    generator = Generator(size).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        w = generator.map(torch.randn(2, generator.style_dim, generator=gen))
        codes = w[:, None].expand(-1, generator.n_latent, -1).contiguous()
        perturbed = copy.deepcopy(generator)
        for name, p in perturbed.named_parameters():
            if not name.startswith("style."):
                p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=gen))
        target = perturbed(codes[1:2]).clamp(-1, 1)
    return generator, codes[0:1], target


def step_parts(generator, pivot, target, lp, repeats: int) -> dict:
    """Median seconds of the parts of one step, and of Adam's update alone in each implementation."""
    import torch
    import torch.nn.functional as F

    from stylecli.tuning import render, synthesis_parameters
    from stylecli.tuning.pti import apply_gradients

    params = {n: p.detach().clone().requires_grad_(True) for n, p in synthesis_parameters(generator).items()}
    parts: dict[str, list[float]] = {"forward": [], "losses": [], "backward": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = render(generator, pivot, params)
        t1 = time.perf_counter()
        loss = F.mse_loss(out, target) + lp(out, target).mean()
        t2 = time.perf_counter()
        grads = torch.autograd.grad(loss, list(params.values()))
        t3 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(dt)
    result: dict = {k: statistics.median(v) for k, v in parts.items()}
    updated = {}
    for name, options in {"adam_default": {}, "adam_foreach": {"foreach": True}, "adam_fused": {"fused": True}}.items():
        copies = [p.detach().clone().requires_grad_(True) for p in params.values()]
        try:
            opt = torch.optim.Adam(copies, lr=3e-4, **options)
            apply_gradients(opt, copies, grads)
            t0 = time.perf_counter()
            apply_gradients(opt, copies, grads)
            result[name] = time.perf_counter() - t0
            updated[name] = copies
        except (RuntimeError, TypeError) as exc:
            result[name] = f"unavailable: {str(exc)[:80]}"
    if "adam_fused" in updated:
        result["adam_fused_vs_default_max_abs"] = max(
            float((a - b).abs().max()) for a, b in zip(updated["adam_fused"], updated["adam_default"]))
    return result


def worker(formulation: str, retain_heap: bool, steps: int, size: int, out: Path) -> None:
    import torch

    if retain_heap:
        from stylecli.allocator import retain_freed_memory

        assert retain_freed_memory(), "the heap policy could not be applied here"
    from stylecli.tuning import TuningConfig, tune

    generator, pivot, target = problem(size)
    generator.set_reference(formulation == "reference")
    lp, lpips_kind = lpips_fn()
    times: list[float] = []
    cpu: list[float] = []
    last = [time.perf_counter(), time.process_time()]

    def progress(step: int, lpips: float, mse: float) -> None:
        now = [time.perf_counter(), time.process_time()]
        if 2 <= step <= steps + 1:  # whole steps: an update and the next forward pass (step 1: warm-up)
            times.append(now[0] - last[0])
            cpu.append(now[1] - last[1])
        last[:] = now

    result = tune(generator, pivot, target, lp, TuningConfig(steps=steps + 2, lpips_stop=0.0), progress=progress)
    report = {"size": size, "seconds_per_step": statistics.median(times), "step_seconds": times,
              "cpu_seconds_per_step": statistics.median(cpu),
              "peak_rss_gb": peak_rss_gb(), "threads": torch.get_num_threads(), "lpips": lpips_kind,
              "pivot_lpips": result.pivot_lpips, "pivot_mse": result.pivot_mse}
    if formulation == "fast" and retain_heap:
        report["parts_seconds"] = step_parts(generator, pivot, target, lp, repeats=2)
        report["storage"] = storage(generator, pivot, result.weights)
    out.write_text(json.dumps(report))


def storage(generator, pivot, weights) -> dict:
    """Size of the stored difference and the rendering error of the stored form against the in-memory weights."""
    import torch

    from stylecli.tuning import load_tuned, render, save_tuned

    with tempfile.TemporaryDirectory() as tmp:
        path = save_tuned(Path(tmp) / "face.tuned.safetensors", generator, weights)
        size = path.stat().st_size
        t0 = time.perf_counter()
        loaded = load_tuned(path, generator)
        load_s = time.perf_counter() - t0
    with torch.no_grad():
        tuned, stored, base = (render(generator, pivot, w) for w in (weights, loaded, None))
    n = sum(t.numel() for t in weights.values())
    return {"file_mb": size / 1e6, "fp32_full_generator_mb": sum(p.numel() for p in generator.parameters()) * 4 / 1e6,
            "tuned_parameters": n, "load_seconds": load_s,
            "stored_vs_tuned_max_abs": float((stored - tuned).abs().max()),
            "stored_vs_tuned_mse": float((stored - tuned).square().mean()),
            "tuned_vs_base_max_abs": float((tuned - base).abs().max()),
            "max_abs_weight_change": max(float((w - b).abs().max()) for (k, w), b in
                                         ((kw, dict(generator.named_parameters())[kw[0]]) for kw in weights.items()))}


def fit(size: int, steps: int) -> dict:
    from stylecli.tuning import TuningConfig, tune

    generator, pivot, target = problem(size, seed=10)
    lp, lpips_kind = lpips_fn()
    curve: list[tuple[int, float, float]] = []
    result = tune(generator, pivot, target, lp, TuningConfig(steps=steps, lpips_stop=0.0),
                  progress=lambda s, lpips, mse: curve.append((s, lpips, mse)))
    pivot_lpips = curve[0][1]
    first = lambda limit: next((s for s, v, _ in curve if v <= limit), None)  # noqa: E731
    return {"size": size, "lpips": lpips_kind, "max_steps": steps, "seconds": result.seconds,
            "pivot_lpips": pivot_lpips, "pivot_mse": curve[0][2], "final_lpips": result.lpips, "final_mse": result.mse,
            "steps_to_lpips_0.06": first(0.06), "steps_to_relative_stop": first(pivot_lpips * RELATIVE_STOP),
            "curve_every_25": [c for c in curve if c[0] % 25 == 0],
            "storage_after_fit": storage(generator, pivot, result.weights)}


def run_variant(name: str, steps: int, size: int, tmp: Path) -> dict:
    formulation, retain = VARIANTS[name]
    out = tmp / f"{name}.json"
    cmd = [sys.executable, __file__, "--worker", formulation, str(int(retain)), str(steps), str(size), str(out)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--size", type=int, default=1024, help="generator size for the step timing")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--fit-size", type=int, default=256)
    parser.add_argument("--fit-steps", type=int, default=350)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        formulation, retain, steps, size, out = args.worker
        worker(formulation, retain == "1", int(steps), int(size), Path(out))
        return
    import torch

    report: dict = {"torch": torch.__version__, "device": "cpu", "threads": torch.get_num_threads(),
                    "load_average_at_start": os.getloadavg(), "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in filter(None, args.variants.split(",")):
            report["variants"][name] = run_variant(name, args.steps, args.size, Path(tmp))
    if not args.skip_fit:
        report["fit"] = fit(args.fit_size, args.fit_steps)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
