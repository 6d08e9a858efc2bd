"""Architecture tests: official key layout at full size, and outputs against independent computations."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model
from helpers import reference_dir

from stylecli.models import stylegan2
from stylecli.models.e4e import build_e4e
from stylecli.models.stylegan2 import Generator, ModulatedConv2d, standard_normal


def reference_shapes() -> dict[str, tuple[list[int], str]]:
    rows = {}
    for line in reference_dir("e4e_ffhq_state_dict.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            rows[key] = (eval(shape), dtype)
    return rows


@pytest.mark.parametrize("kind", ["e4e", "psp"])
def test_full_ffhq_layout_matches_official_state_dict(kind):
    official = reference_shapes()
    with torch.device("meta"):
        model = build_e4e(1024, kind)
    ours = {k: (list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()}
    assert ours.pop("latent_avg") == ([18, 512], "float32")
    assert ours == official


def test_generator_layout_without_prefix_is_rosinality_g_ema():
    with torch.device("meta"):
        g = Generator(1024)
    keys = set(g.state_dict())
    assert {"style.1.weight", "style.8.bias", "input.input", "conv1.conv.weight", "to_rgb1.bias",
            "convs.15.activate.bias", "to_rgbs.7.upsample.kernel", "noises.noise_16"} <= keys
    assert "style.9.weight" not in keys and "convs.16.conv.weight" not in keys
    assert g.n_latent == 18


def modulated_conv_oracle(conv: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per-sample loop with plain (non-grouped) convolutions: an independent path to the same math."""
    outs = []
    for n in range(x.shape[0]):
        s = F.linear(style[n], conv.modulation.weight * conv.modulation.scale, conv.modulation.bias)
        w = conv.weight[0] * conv.scale * s.view(1, -1, 1, 1)
        if conv.demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if conv.upsample:
            y = F.conv_transpose2d(x[n : n + 1], w.transpose(0, 1), stride=2)
            y = conv.blur(y)
        else:
            y = F.conv2d(x[n : n + 1], w, padding=conv.padding)
        outs.append(y)
    return torch.cat(outs)


@pytest.mark.parametrize("upsample,demodulate,k", [(False, True, 3), (True, True, 3), (False, False, 1)])
def test_modulated_conv_matches_per_sample_oracle(upsample, demodulate, k):
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, k, 8, demodulate=demodulate, upsample=upsample)
    x, style = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
    out = conv(x, style)
    assert out.shape == (3, 5, 16 if upsample else 8, 16 if upsample else 8)
    torch.testing.assert_close(out, modulated_conv_oracle(conv, x, style), atol=1e-5, rtol=1e-5)


def test_generator_is_deterministic_and_batch_independent():
    model = tiny_model()
    codes = torch.randn(3, model.n_styles, 32)
    with torch.no_grad():
        batch = model.synthesize(codes)
        single = torch.cat([model.synthesize(codes[i : i + 1]) for i in range(3)])
        again = model.synthesize(codes)
    assert batch.shape == (3, 3, 32, 32)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)
    assert torch.equal(batch, again)
    with torch.no_grad():
        noisy = model.decoder(codes, randomize_noise=True)
    assert not torch.allclose(noisy, batch)


def test_w_code_equals_repeated_wplus_and_truncation():
    g = tiny_model().decoder
    w = torch.randn(2, 32)
    with torch.no_grad():
        a = g(w)
        b = g(w.unsqueeze(1).repeat(1, g.n_latent, 1))
        mean = g.mean_latent(64, torch.Generator().manual_seed(0))
        t0 = g(w, truncation=0.0, truncation_latent=mean)
        m = g(mean.expand(2, -1))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(t0, m)
    with pytest.raises(ValueError):
        g(torch.randn(1, g.n_latent + 1, 32))


def test_mapping_network_starts_with_pixelnorm():
    g = tiny_model().decoder
    z = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(g.map(z), g.map(z * 7.0))  # PixelNorm removes the scale


def test_e4e_progressive_stage_controls_active_offsets():
    model = tiny_model("e4e")
    x = torch.randn(1, 3, 256, 256)
    enc = model.encoder
    with torch.no_grad():
        enc.progressive_stage = 0
        w_only = enc(x)
        enc.progressive_stage = 2
        two = enc(x)
        enc.progressive_stage = 18
        full = enc(x)
    assert torch.equal(w_only, w_only[:, :1].expand_as(w_only))  # pure W: every layer the same
    assert torch.equal(two[:, 3:], two[:, :1].expand(-1, model.n_styles - 3, -1))
    assert not torch.equal(two[:, 1], two[:, 0]) and not torch.equal(two[:, 2], two[:, 0])
    torch.testing.assert_close(full[:, :3], two[:, :3])
    # Offset i is style block i applied to the right FPN level, added to the base code.
    with torch.no_grad():
        c1, c2, c3 = enc.features(x)
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + enc.latlayer1(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + enc.latlayer2(c1)
        base = enc.styles[0](c3)
        torch.testing.assert_close(full[:, 5], base + enc.styles[5](p2))
        torch.testing.assert_close(full[:, 7], base + enc.styles[7](p1))


def test_psp_encoder_predicts_every_style_independently():
    model = tiny_model("psp")
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        codes = model.encoder(x)
        c1, c2, c3 = model.encoder.features(x)
        torch.testing.assert_close(codes[:, 0], model.encoder.styles[0](c3))
    assert codes.shape == (2, model.n_styles, 32)


def test_encode_adds_latent_avg():
    model = tiny_model()
    model.latent_avg.copy_(torch.randn_like(model.latent_avg))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), model.encoder(x) + model.latent_avg)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("phase_min_pixels", [stylegan2.PHASE_CONV_MIN_PIXELS, 1])
def test_fast_generator_path_matches_the_grouped_reference(batch, phase_min_pixels, monkeypatch):
    """The fast path (plain or shared convolutions, per-parity upsampling convolutions, channels-last, bias and
    gain folded into the convolutions, in-place activations) keeps the math."""
    monkeypatch.setattr(stylegan2, "PHASE_CONV_MIN_PIXELS", phase_min_pixels)
    g = tiny_model(seed=4).decoder
    codes = torch.randn(batch, g.n_latent, 32)
    with torch.inference_mode():
        fast = g(codes)
        g.set_reference(True)
        reference = g(codes)
        g.set_reference(False)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)
    assert not torch.equal(fast, torch.zeros_like(fast))


def test_fast_path_keeps_gradients_for_training():
    model = tiny_model()
    codes = torch.randn(2, model.n_styles, 32, requires_grad=True)
    model.decoder(codes).square().mean().backward()
    assert codes.grad is not None and codes.grad.abs().sum() > 0


@pytest.mark.parametrize("batch", [2, 3])
def test_shared_convolution_formulation_matches_grouped(batch):
    """The batch > 1 formulation (scale inputs, shared conv, demodulate outputs), as used off the CPU."""
    torch.manual_seed(1)
    for upsample in (False, True):
        conv = ModulatedConv2d(6, 5, 3, 8, upsample=upsample)
        x, style = torch.randn(batch, 6, 8, 8), torch.randn(batch, 8)
        torch.testing.assert_close(conv.forward_fast(x, style), conv.forward_grouped(x, style), atol=1e-5, rtol=1e-5)


def test_building_on_the_meta_device_stays_cheap():
    """Loading builds the modules on the meta device; meta random ops or arithmetic there would pull in over a
    second of torch's lazy imports (torch._dynamo) on every CLI start."""
    child = (
        "import sys, torch\n"
        "from stylecli.models.e4e import build_e4e\n"
        "before = 'torch._dynamo' in sys.modules\n"
        "with torch.device('meta'):\n"
        "    model = build_e4e(64)\n"
        "assert all(t.is_meta for t in model.parameters())\n"
        "print(before, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.split()
    if out[0] == "True":
        pytest.skip("this torch imports torch._dynamo eagerly")
    assert out == ["False", "False"]


def test_standard_normal_draws_what_randn_draws():
    torch.manual_seed(3)
    expected = torch.randn(4, 5)
    torch.manual_seed(3)
    torch.testing.assert_close(standard_normal(4, 5), expected, rtol=0, atol=0)
    with torch.device("meta"):
        assert standard_normal(4, 5).is_meta
