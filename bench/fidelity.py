"""Speed of ReStyle-e4e and HyperStyle inversion: stylecli against the official formulation, same machine, same run.

    python bench/fidelity.py [--repeats 3] [--steps 5] [--rounds 1] [--models restyle hyperstyle]

Full FFHQ configuration (1024 px generator, 18 styles; ReStyle: IR-SE50 on 6 channels; HyperStyle: IR-SE50 W
encoder, ResNet34 hypernetwork with the default 17 tuned layers), random weights, float32, batch 1. Each variant
runs in its own process (the heap policy is per process):

- official_like: what the official inference computes, as it computes it: the generator's grouped modulated
  convolutions, ReStyle's 18 style heads one after the other (ReStyle.set_reference / Generator.set_reference),
  every hypernetwork head on its own (the shared 0.5 GB hypernetwork read once per shared layer), offsets of
  3x3 layers repeated over the taps, the C library's default heap;
- stylecli: the fast generator path with per-photo weights as plain batch-1 convolutions, ReStyle's style heads
  as one operation per layer for all 18 (StyleHeads), HyperStyle's shared heads in one batch, offsets kept
  [out, in, 1, 1] where the official code repeats them, the retained heap.

One inversion = what `stylecli invert` computes per face: ReStyle's `steps` passes (encoder + generator each; the
mean latent's image is computed once per model, as the official script does), HyperStyle's W code, its image and
`steps` passes (hypernetwork + generator each). Prints JSON: medians per inversion and per part, the ratios, and
the largest output difference between the two formulations; and the ceiling: stylecli's matrix work per inversion
(convolutions and products, counted) at the best rate this CPU gives a convolution of these models, the speedup
that would give, and the fraction of that rate a 2.5x speedup needs against the one achieved.

On a shared machine other processes slow single runs down by up to several times: `--rounds N` runs the two
variants N times each, alternating which goes first, and reports every round's inversion ratio (a slow spell
hits both runs of a round alike) beside the ratio of the medians over all rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = {"official_like": ("reference", "default"), "stylecli": ("fast", "retained")}


def median_time(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def build(model: str):
    import torch

    from stylecli.models.hyperstyle import DEFAULT_LAYERS_TO_TUNE, HyperNetwork, HyperStyle, WEncoder, generator_layers
    from stylecli.models.restyle import BackboneEncoder, ReStyle
    from stylecli.models.stylegan2 import Generator

    torch.manual_seed(0)
    decoder = Generator(1024)
    avg = decoder.mean_latent(1000).expand(18, -1)
    if model == "restyle":
        return ReStyle(BackboneEncoder(18, 6), decoder, avg).eval()
    hypernet = HyperNetwork([s for _, s in generator_layers(decoder)], DEFAULT_LAYERS_TO_TUNE)
    with torch.no_grad():  # keep the random offsets small, as trained ones are
        for block in hypernet.refinement_blocks:
            if block is not None and hasattr(block, "output"):
                block.output[-1].weight.mul_(0.01)
    return HyperStyle(hypernet, decoder, WEncoder(18), avg).eval()


def official_offsets(hypernet, x_input):
    """SharedWeightsHyperNetResNet.forward as written: each head on its own, 3x3 offsets repeated."""
    from stylecli.models.hyperstyle import HyperRefinementBlock

    feats = hypernet.features(x_input)
    out = []
    for block in hypernet.refinement_blocks:
        if block is None:
            out.append(None)
        elif isinstance(block, HyperRefinementBlock):
            out.append(block(feats))
        else:
            d = block(feats)
            out.append(d.repeat(1, 1, 1, block.kernel_size, block.kernel_size))
    return out


def run_variant(model_name: str, formulation: str, repeats: int, steps: int) -> dict:
    import torch

    from stylecli.models.restyle import pool

    model = build(model_name).requires_grad_(False)  # (the FLOP counter needs it under no_grad)
    reference = formulation == "reference"
    (model if model_name == "restyle" else model.decoder).set_reference(reference)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    result: dict = {}
    with torch.inference_mode():
        if model_name == "restyle":
            model.average_image()  # once per model, as the official script computes avg_image once

            def invert():
                return [s.codes for s in model.iterate(x, steps)][-1]

            partner = model.average_image()[None]
            inp = torch.cat([x, partner], 1)
            result["encoder_pass_s"], _ = median_time(lambda: model.encoder(inp), repeats)
        else:
            def invert():
                codes = model.w_codes(x)
                partner = pool(model.synthesize(codes))
                offsets = None
                for _ in range(steps):
                    inp = torch.cat([x, partner], 1)
                    new = official_offsets(model.hypernet, inp) if reference else model.hypernet(inp)
                    offsets = new if offsets is None else [None if a is None else a + b for a, b in zip(offsets, new)]
                    partner = pool(model.synthesize(codes, offsets))
                return partner

            inp = torch.cat([x, x], 1)
            fn = (lambda: official_offsets(model.hypernet, inp)) if reference else (lambda: model.hypernet(inp))
            result["hypernetwork_pass_s"], _ = median_time(fn, repeats)
            result["w_encoder_s"], _ = median_time(lambda: model.w_codes(x), repeats)
        codes = model.latent_avg[None]
        result["generator_pass_s"], _ = median_time(lambda: model.synthesize(codes), repeats)
        result["inversion_s"], out = median_time(invert, repeats)
    if not reference:
        result["gflop_per_inversion"] = matrix_gflop(invert)
        result["best_conv_gflops_per_s"] = best_conv_rate(repeats)
    torch.save(out, os.environ["FIDELITY_BENCH_OUT"])
    return result


def matrix_gflop(fn) -> float:
    """The convolutions' and matrix products' work in one call of fn (what the CPU's matrix units must do)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:  # (the counter's module hooks do not work under inference_mode)
        fn()
    return counter.get_total_flops() / 1e9


def best_conv_rate(repeats: int) -> float:
    """GFLOP/s of the generator's heaviest convolution shape (3x3, 512 -> 512 channels on a 64 px map,
    channels-last, batch 1), its fastest of several runs: about the best rate this CPU gives any convolution of
    these models."""
    import time

    import torch
    import torch.nn.functional as F

    x = torch.randn(1, 512, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 512, 3, 3)
    F.conv2d(x, w, padding=1)  # warm-up
    times = []
    for _ in range(max(repeats, 9)):  # the fastest run: what the CPU can do when nothing else runs
        start = time.perf_counter()
        F.conv2d(x, w, padding=1)
        times.append(time.perf_counter() - start)
    return 2 * 64 * 64 * 512 * 512 * 9 / min(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant, alternating their order")
    parser.add_argument("--models", nargs="+", default=["restyle", "hyperstyle"], choices=["restyle", "hyperstyle"])
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process: one model, one variant
        model_name, variant = args.variant.split(":")
        formulation, heap = VARIANTS[variant]
        if heap == "retained":
            from stylecli.allocator import retain_freed_memory

            retain_freed_memory()
        print(json.dumps(run_variant(model_name, formulation, args.repeats, args.steps)))
        return

    import tempfile

    import torch

    report: dict = {"config": "FFHQ 1024 px, 18 styles, random weights, float32, batch 1",
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": args.steps,
                    "repeats": args.repeats, "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="stylecli-fidelity-bench-") as tmp:
        for model_name in args.models:
            runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
            outs = {}
            for r in range(args.rounds):
                for variant in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
                    out_path = os.path.join(tmp, f"{model_name}_{variant}.pt")
                    env = dict(os.environ, FIDELITY_BENCH_OUT=out_path, STYLECLI_KEEP_HEAP="1")
                    cmd = [sys.executable, __file__, "--variant", f"{model_name}:{variant}",
                           "--repeats", str(args.repeats), "--steps", str(args.steps)]
                    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                    runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    outs[variant] = torch.load(out_path, weights_only=True)
            entry: dict = {v: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for v, rs in runs.items()}
            official, ours = entry["official_like"], entry["stylecli"]
            entry["speedup_inversion"] = official["inversion_s"] / ours["inversion_s"]
            entry["speedup_generator_pass"] = official["generator_pass_s"] / ours["generator_pass_s"]
            for part in ("encoder_pass_s", "hypernetwork_pass_s"):
                if part in official:
                    entry[f"speedup_{part[:-2]}"] = official[part] / ours[part]
            if args.rounds > 1:
                entry["inversion_s_rounds"] = {v: [run["inversion_s"] for run in rs] for v, rs in runs.items()}
                entry["speedup_inversion_rounds"] = [a["inversion_s"] / b["inversion_s"]
                                                     for a, b in zip(runs["official_like"], runs["stylecli"])]
            entry["max_abs_difference"] = float((outs["official_like"] - outs["stylecli"]).abs().max())
            # The ceiling: every FLOP at the best convolution rate, with no memory-bound work at all.
            floor_s = ours["gflop_per_inversion"] / ours["best_conv_gflops_per_s"]
            entry["inversion_s_if_all_at_best_conv_rate"] = floor_s
            entry["speedup_ceiling"] = official["inversion_s"] / floor_s
            entry["fraction_of_best_rate_for_2.5x"] = 2.5 * floor_s / official["inversion_s"]
            entry["achieved_fraction_of_best_rate"] = floor_s / ours["inversion_s"]
            report[model_name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
