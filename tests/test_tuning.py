"""Pivotal tuning on tiny random generators: it fits the target, stores compactly, stops early, stays local."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from conftest import tiny_model

from stylecli.tuning import (
    ProjectionConfig,
    TunedWeightsError,
    TuningConfig,
    load_tuned,
    project_w,
    render,
    save_tuned,
    synthesis_parameters,
    tune,
)
from stylecli.tuning.pti import Locality, adam, apply_gradients

FAST = {"steps": 60, "lr": 3e-3, "lpips_stop": 0.0}  # tiny random models move slowly at PTI's lr 3e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lpips_fn():
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    with warnings.catch_warnings():  # torchvision's notes on lpips's old-style arguments
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval().requires_grad_(False)  # offline
    return lambda a, b: net(a, b).flatten()


@pytest.fixture(scope="module")
def setup():
    """A frozen tiny generator, a pivot code, and a target rendered from another code by perturbed weights."""
    generator = tiny_model().decoder.requires_grad_(False)
    with torch.no_grad():  # the mapping's usual initial scale (randn / lr_mul): codes of unit scale, as in FFHQ
        for layer in generator.style[1:]:
            layer.weight.mul_(1 / layer.lr_mul)
    gen = torch.Generator().manual_seed(1)
    w = generator.map(torch.randn(2, generator.style_dim, generator=gen))
    codes = w[:, None].expand(-1, generator.n_latent, -1)
    perturbed = copy.deepcopy(generator)
    with torch.no_grad():
        for name, p in perturbed.named_parameters():
            if not name.startswith("style."):
                p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=gen))
        target = perturbed(codes[1:2])
    return generator, codes[0:1].clone(), target


@pytest.fixture(scope="module")
def tuned(setup, lpips_fn):
    generator, pivot, target = setup
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    result = tune(generator, pivot, target, lpips_fn, TuningConfig(**FAST))
    return result, before


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.slow
def test_tuning_lowers_mse_and_lpips_by_a_large_factor(setup, tuned):
    generator, pivot, target = setup
    result, before = tuned
    assert result.steps == 60 and not result.stopped_early
    assert result.mse < result.pivot_mse / 10
    assert result.lpips < result.pivot_lpips / 10
    with torch.no_grad():
        out = render(generator, pivot, result.weights)
    assert float(torch.nn.functional.mse_loss(out, target)) == pytest.approx(result.mse, rel=1e-4)
    assert not any(k.startswith("style.") for k in result.weights)  # the mapping network is not tuned
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # base untouched


def test_stored_difference_reproduces_the_tuned_output(setup, tuned, tmp_path):
    generator, pivot, _ = setup
    result, _ = tuned
    path = save_tuned(tmp_path / "face.tuned.safetensors", generator, result.weights, {"steps": result.steps})
    loaded = load_tuned(path, generator)
    assert set(loaded) == set(result.weights)
    with torch.no_grad():
        tuned, stored, base = (render(generator, pivot, w) for w in (result.weights, loaded, None))
    assert max_diff(tuned, base) > 1e-2  # tuning changed the output ...
    assert max_diff(tuned, stored) < 1e-3  # ... and the fp16 difference reproduces it
    n_params = sum(t.numel() for t in result.weights.values())
    assert path.stat().st_size < n_params * 2 + 8192  # fp16, synthesis weights only


def test_tuned_file_refused_on_another_generator(setup, tuned, tmp_path):
    generator, _, _ = setup
    result, _ = tuned
    path = save_tuned(tmp_path / "face.tuned.safetensors", generator, result.weights)
    other = tiny_model(seed=1).decoder
    with pytest.raises(TunedWeightsError, match="tuned from another generator"):
        load_tuned(path, other)
    broken = tmp_path / "broken.tuned.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(TunedWeightsError, match="broken.tuned.safetensors: not a readable"):
        load_tuned(broken, generator)


def test_early_stop_at_the_lpips_threshold(setup, lpips_fn):
    generator, pivot, target = setup
    seen: list[float] = []
    first = tune(generator, pivot, target, lpips_fn, TuningConfig(**{**FAST, "steps": 0}))
    stop = first.pivot_lpips / 4
    result = tune(generator, pivot, target, lpips_fn, TuningConfig(**{**FAST, "lpips_stop": stop}),
                  progress=lambda step, lp, mse: seen.append(lp))
    assert result.stopped_early and 0 < result.steps < FAST["steps"]
    assert result.lpips <= stop < min(seen[:-1])  # stopped at the first evaluation under the threshold
    assert len(seen) == result.steps + 1
    already = tune(generator, pivot, target, lpips_fn, TuningConfig(**{**FAST, "lpips_stop": 1.0}))
    assert already.steps == 0 and already.stopped_early
    assert all(torch.equal(already.weights[k], v) for k, v in generator.named_parameters() if k in already.weights)


@pytest.mark.slow
def test_locality_keeps_far_codes_closer_to_the_original(setup, lpips_fn):
    generator, pivot, target = setup
    # alpha 10 here: this tiny W+ code has 8 x 32 numbers (FFHQ's: 18 x 512, alpha 30)
    options = {**FAST, "steps": 30, "locality_alpha": 10.0}
    plain = tune(generator, pivot, target, lpips_fn, TuningConfig(**options))
    local = tune(generator, pivot, target, lpips_fn, TuningConfig(**options, locality=True))
    # Far codes drawn as the regularizer draws them, from another seed (not the ones it trained on).
    probe = Locality(generator, pivot, lpips_fn, TuningConfig(**options, seed=7, locality_samples=8)).far_codes()
    assert torch.allclose((probe - pivot).flatten(1).norm(dim=1), torch.full((8,), 10.0), rtol=1e-4)
    with torch.no_grad():
        base = render(generator, probe)
        drift = [float((render(generator, probe, r.weights) - base).pow(2).mean()) for r in (plain, local)]
    assert drift[1] < drift[0] / 1.5
    assert local.mse < local.pivot_mse / 10  # and it still fits the photo


def test_fast_generator_path_gives_the_reference_gradients(setup):
    generator, pivot, target = setup
    g = copy.deepcopy(generator).requires_grad_(True)
    grads = []
    for reference in (False, True):
        g.set_reference(reference)
        g.zero_grad()
        torch.nn.functional.mse_loss(render(g, pivot), target).backward()
        grads.append({n: p.grad.clone() for n, p in g.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and len(grads[0]) > 10
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-3, atol=1e-6), name


def test_fused_adam_gives_the_default_update(setup):
    """Channels-last gradients (the constant input's) once made the fused CPU Adam update the wrong elements."""
    generator, pivot, target = setup
    params = {n: p.detach().clone().requires_grad_(True) for n, p in synthesis_parameters(generator).items()}
    grads = torch.autograd.grad(torch.nn.functional.mse_loss(render(generator, pivot, params), target),
                                list(params.values()))
    results = []
    for make in (lambda ps: adam(ps, 3e-4), lambda ps: torch.optim.Adam(ps, lr=3e-4)):
        copies = [p.detach().clone().requires_grad_(True) for p in params.values()]
        optimizer = make(copies)
        for _ in range(2):
            apply_gradients(optimizer, copies, grads)
        results.append(copies)
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)  # float rounding; the bug moved elements by 4 lr


@pytest.mark.slow
def test_w_projection_moves_from_the_mean_towards_the_target(setup, lpips_fn):
    generator, _, _ = setup
    gen = torch.Generator().manual_seed(3)
    w_true = generator.map(torch.randn(1, generator.style_dim, generator=gen))
    with torch.no_grad():
        target = generator(w_true[:, None].expand(-1, generator.n_latent, -1))
    config = ProjectionConfig(steps=60, w_avg_samples=64)
    code = project_w(generator, target, lpips_fn, config)
    assert code.shape == (1, generator.n_latent, generator.style_dim)
    assert torch.equal(code[0, 0], code[0, -1])  # one w for every layer
    w_avg = generator.map(torch.randn(64, generator.style_dim, generator=gen)).mean(0, keepdim=True)
    with torch.no_grad():
        start, end = (float((render(generator, c[:, None].expand(-1, generator.n_latent, -1)) - target).square().mean())
                      for c in (w_avg, code[:, 0]))
    assert end < start / 2
    assert config.lr_at(0.0) == 0.0 and config.lr_at(0.5) == pytest.approx(0.01)
    assert config.lr_at(0.9) == pytest.approx(0.01 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))  # cosine ramp-down


def test_progress_lines_in_logs_and_silence_when_quiet():
    import io

    from stylecli.tuning.progress import TuningBars
    from stylecli.tuning.pti import TuningResult

    stream = io.StringIO()
    bar = TuningBars(stream=stream, interval=0.0)("photo.jpg", 350)
    for step, lp in ((0, 0.2), (1, 0.15), (2, 0.05)):
        bar(step, lp, 0.01)
    bar.close(TuningResult({}, 2, 0.05, 0.01, 0.2, 0.04, True, 3.0))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "stylecli: tuning photo.jpg: step 0/350, LPIPS 0.2000"
    assert "step 1/350, LPIPS 0.1500, about" in lines[1] and "left" in lines[1]
    assert lines[-1] == ("stylecli: photo.jpg: tuned in 2 steps (reached the LPIPS threshold), LPIPS 0.2000 -> "
                         "0.0500, 3s")
    assert TuningBars(quiet=True)("photo.jpg", 350) is None
