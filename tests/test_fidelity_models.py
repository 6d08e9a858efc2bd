"""ReStyle and HyperStyle: tiny models of the real architectures, official file formats, strict loading, and the
iterations against a direct transcription of the official inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_fidelity import (
    hyperstyle_opts,
    restyle_opts,
    save_tiny_hyperstyle,
    save_tiny_restyle,
    tiny_hyperstyle,
    tiny_restyle,
)

from stylecli.encoders.formats.e4e import CheckpointError
from stylecli.encoders.formats.hyperstyle import load_hyperstyle, load_w_encoder
from stylecli.encoders.formats.restyle import load_restyle, save_restyle
from stylecli.models.hyperstyle import HyperRefinementBlock, RefinementBlock, generator_layers

SIZE = 64  # the models run on any input size; 64 px keeps the tests fast (the pipeline feeds 256)


def photo(seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def pool256(images: torch.Tensor) -> torch.Tensor:
    """The official face pool (to the input size here)."""
    return F.adaptive_avg_pool2d(images, (SIZE, SIZE))


def official_restyle(model, x: torch.Tensor, n_iters: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """restyle-encoder's run_on_batch + e4e.forward + ProgressiveBackboneEncoder.forward, written out with the
    generator's textbook (grouped convolution) formulation."""
    enc, dec = model.encoder, model.decoder.set_reference(True)
    try:
        avg = pool256(dec(model.latent_avg[None], input_is_latent=True, randomize_noise=False))
        partner, latent, out = avg.repeat(x.shape[0], 1, 1, 1), None, []
        for _ in range(n_iters):
            feats = enc.body(enc.input_layer(torch.cat([x, partner], 1)))
            w0 = enc.styles[0](feats)
            w = w0.repeat(enc.n_styles, 1, 1).permute(1, 0, 2).clone()
            for i in range(1, enc.n_styles):
                w[:, i] += enc.styles[i](feats)
            codes = w + (model.latent_avg.repeat(x.shape[0], 1, 1) if latent is None else latent)
            partner = pool256(dec(codes, input_is_latent=True, randomize_noise=False))
            latent = codes
            out.append((codes, partner))
        return out
    finally:
        dec.set_reference(False)


def test_restyle_loads_official_format_and_iterates_as_the_official_code(tmp_path):
    path = tmp_path / "restyle.pt"
    original = save_tiny_restyle(path)
    loaded = load_restyle(path)  # opts.device is 'cuda:0': ignored
    assert loaded.encoder_type == "ProgressiveBackboneEncoder" and loaded.default_steps == 5
    model = loaded.model
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    x = photo(batch=2)
    with torch.no_grad():
        expected = official_restyle(model, x, 2)
        steps = list(model.iterate(x, 2))
    assert len(steps) == 2
    for (codes, pooled), step in zip(expected, steps):
        assert (step.codes - codes).abs().max() < 1e-4
        assert (step.pooled - pooled).abs().max() < 1e-4
    # successive passes really refine (the code moves), and the last pass can skip rendering
    assert (steps[1].codes - steps[0].codes).abs().max() > 1e-3
    with torch.no_grad():
        last = list(model.iterate(x, 2, render_last=False))[-1]
        assert last.pooled is None and torch.allclose(last.codes, steps[-1].codes, atol=1e-6)
        assert torch.allclose(model(x, 2), steps[-1].codes, atol=1e-6)


@pytest.mark.parametrize(("backbone", "progressive"), [("resnet", True), ("irse", False), ("resnet", False)])
def test_restyle_encoder_variants(tmp_path, backbone, progressive):
    path = tmp_path / "variant.pt"
    save_tiny_restyle(path, backbone, progressive)
    model = load_restyle(path).model
    x = torch.cat([photo(), photo(2)], 1)
    with torch.no_grad():
        codes = model.encoder(x)
        enc = model.encoder
        feats = enc.features(x)
        heads = torch.stack([h(feats) for h in enc.styles], 1)
    if progressive:  # base code from head 0, offsets from the others
        assert torch.allclose(codes[:, 0], heads[:, 0], atol=1e-6)
        assert torch.allclose(codes[:, 1:], heads[:, :1] + heads[:, 1:], atol=1e-6)
    else:
        assert torch.allclose(codes, heads, atol=1e-6)


def test_style_heads_run_together_on_views_of_packed_weights(tmp_path):
    model = tiny_restyle()
    heads = model.encoder.styles
    keys = list(model.state_dict())
    feats = torch.randn(3, 32, 16, 16)  # a batch of 3 shared maps
    with torch.no_grad():
        heads.reference = True
        expected = heads(feats)
        heads.reference = False
        fast = heads(feats)
    assert fast.shape == expected.shape == (3, len(heads), 32)
    assert (fast - expected).abs().max() < 1e-6 and expected.abs().max() > 0.1
    # the heads' parameters are views of the packed tensors: nothing stored twice, the official keys unchanged
    packed = heads.packed()
    assert heads[5].convs[2].weight.data_ptr() == packed[1][0][5].data_ptr() and len(heads) == 8
    assert heads[-1].linear.bias.data_ptr() == packed[-1][1][len(heads) - 1].data_ptr()
    assert list(model.state_dict()) == keys
    # a replaced parameter is packed again, and used
    with torch.no_grad():
        heads[3].linear.weight = torch.nn.Parameter(heads[3].linear.weight * 2, requires_grad=False)
        heads.reference = True
        expected = heads(feats)
        heads.reference = False
        assert (heads(feats) - expected).abs().max() < 1e-6
    # with gradients each head runs on its own, so the gradients reach its parameters
    heads.requires_grad_(True)
    heads(feats).sum().backward()
    assert heads[7].convs[0].weight.grad is not None


def test_restyle_strict_loading_names_the_keys(tmp_path):
    model = tiny_restyle()
    opts = restyle_opts(model)
    good = {k: v for k, v in model.state_dict().items() if k != "latent_avg"}

    def load_with(state, **changes):
        path = tmp_path / "bad.pt"
        torch.save({"state_dict": state, "opts": dict(opts, **changes), "latent_avg": model.latent_avg}, path)
        return load_restyle(path)

    missing = dict(good)
    del missing["encoder.styles.3.linear.bias"]
    with pytest.raises(CheckpointError, match=r"missing tensors \(encoder.styles.3.linear.bias\)"):
        load_with(missing)
    with pytest.raises(CheckpointError, match="unexpected tensors .*encoder.extra.weight"):
        load_with({**good, "encoder.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"discriminator.w.*expected only encoder.\*, decoder.\*"):
        load_with({**good, "discriminator.w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="encoder_type 'Encoder4Editing' is not a ReStyle encoder"):
        load_with(good, encoder_type="Encoder4Editing")
    wrong = dict(good, **{"encoder.styles.0.linear.bias": torch.zeros(7)})
    with pytest.raises(CheckpointError, match=r"encoder.styles.0.linear.bias has shape \[7\]"):
        load_with(wrong)
    three = dict(good, **{"encoder.input_layer.0.weight": good["encoder.input_layer.0.weight"][:, :3]})
    with pytest.raises(CheckpointError, match="takes 3 input channels; ReStyle's take 6"):
        load_with(three)
    path = tmp_path / "no_avg.pt"
    torch.save({"state_dict": good, "opts": opts}, path)
    with pytest.raises(CheckpointError, match="'latent_avg' is missing"):
        load_restyle(path)


def test_restyle_half_precision_file_is_upcast(tmp_path):
    model = tiny_restyle()
    path = tmp_path / "half.pt"
    save_restyle(model, path, restyle_opts(model))
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, path)
    loaded = load_restyle(path).model
    assert all(t.dtype != torch.float16 for t in loaded.state_dict().values())


def official_hyperstyle_offsets(hypernet, x_input: torch.Tensor, shapes) -> list[torch.Tensor | None]:
    """SharedWeightsHyperNetResNet.forward as written: every head on its own, 3x3 offsets repeated over the taps."""
    feats = hypernet.body(hypernet.relu(hypernet.bn1(hypernet.conv1(x_input))))
    out = []
    for j, block in enumerate(hypernet.refinement_blocks):
        if block is None:
            out.append(None)
            continue
        if isinstance(block, HyperRefinementBlock):
            out.append(block(feats))
            continue
        k, cin, cout = shapes[j]
        flat = block.output(block.convs(feats))
        out.append(flat.view(-1, cout, cin, 1, 1).repeat(1, 1, 1, k, k))
    return out


def official_modulated_conv(conv, x, style, delta):
    """hyperstyle's ModulatedConv2d.forward for a non-upsampling layer with batch 1."""
    s = conv.modulation(style).view(1, 1, -1, 1, 1)
    w = conv.scale * (conv.weight * (1 + delta) * s)
    if conv.demodulate:
        w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(1, -1, 1, 1, 1)
    return F.conv2d(x, w[0], padding=conv.padding)


@pytest.mark.slow
def test_hyperstyle_official_format_ties_and_iterations(tmp_path):
    original, path, w_path = save_tiny_hyperstyle(tmp_path)
    raw = torch.load(path, weights_only=True)["state_dict"]
    shared = raw["hypernet.shared_weight_hypernet.w2"]
    assert raw["hypernet.refinement_blocks.0.hypernet.w2"].data_ptr() == shared.data_ptr()  # stored once
    loaded = load_hyperstyle(path, w_path)
    model = loaded.model
    assert loaded.default_steps == 5
    blocks = model.hypernet.refinement_blocks
    assert all(blocks[j].hypernet is model.hypernet.shared_weight_hypernet for j in (0, 2, 3, 5, 6, 8, 9, 11, 12))
    assert isinstance(blocks[14], RefinementBlock) and blocks[1] is None and blocks[13] is None
    assert sum(1 for _ in model.hypernet.parameters()) == len({id(p) for p in model.hypernet.parameters()})
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    shapes = [s for _, s in generator_layers(model.decoder)]
    x = photo(batch=2)
    with torch.no_grad():
        codes = model.w_codes(x)
        # one w repeated for every layer, plus the per-layer mean latent: exact (comparing codes - latent_avg rows
        # instead would depend on the CPU's kernels, rounding leaving 1e-7 where w is near 0)
        w = model.w_encoder(x)
        assert torch.equal(w, w[:, :1].expand_as(w)) and torch.equal(codes, w + model.latent_avg)
        partner = pool256(model.synthesize(codes))
        total = None
        steps = list(model.iterate(x, codes, 2))
        for step in steps:
            new = official_hyperstyle_offsets(model.hypernet, torch.cat([x, partner], 1), shapes)
            total = new if total is None else [None if a is None else a + b for a, b in zip(total, new)]
            for j, (ours, ref) in enumerate(zip(step.offsets, total)):
                assert (ours is None) == (ref is None), j
                if ours is not None:
                    assert (ours.expand_as(ref) - ref).abs().max() < 1e-5, j
            # the compact state gives the same summed offsets
            for ours, again in zip(step.offsets, model.offsets_of(step.state)):
                assert (ours is None) == (again is None)
                if ours is not None:
                    assert (ours - again).abs().max() < 1e-5
            partner = pool256(model.synthesize(codes, total))
            assert (step.pooled - partner).abs().max() < 1e-5
        # offsets change the image, and per sample: sample 1 rendered alone with its offsets is the same
        plain = model.synthesize(codes)
        tuned = model.synthesize(codes, steps[-1].offsets)
        assert (plain - tuned).abs().max() > 1e-3
        alone = model.synthesize(codes[1:], [None if d is None else d[1:] for d in steps[-1].offsets])
        assert torch.allclose(alone[0], tuned[1], atol=1e-5)
        # weight * (1 + offset) in the first layer, checked against the official modulated convolution
        weights = model.generator_weights(steps[-1].offsets, 0)
        assert set(weights) == {f"{n}" for n, d in zip(model.layer_names, steps[-1].offsets) if d is not None}
        conv = model.decoder.conv1.conv
        inp = model.decoder.input.input
        ref = official_modulated_conv(conv, inp, codes[:1, 0], steps[-1].offsets[0][:1])
        from torch.func import functional_call

        ours = functional_call(conv, {"weight": weights["conv1.conv.weight"]}, (inp, codes[:1, 0]))
        assert (ours - ref).abs().max() < 1e-4


def test_hyperstyle_strict_loading(tmp_path):
    model = tiny_hyperstyle()
    opts = hyperstyle_opts(model)
    good = {k: v for k, v in model.state_dict().items() if k.startswith(("hypernet.", "decoder."))}

    def load_with(state, **changes):
        path = tmp_path / "bad.pt"
        torch.save({"state_dict": state, "opts": dict(opts, **changes), "latent_avg": model.latent_avg}, path)
        return load_hyperstyle(path)

    differing = dict(good)
    differing["hypernet.refinement_blocks.5.hypernet.b1"] = good["hypernet.shared_weight_hypernet.b1"] + 1
    with pytest.raises(CheckpointError, match="refinement_blocks.5.hypernet.b1 differs from .*shared_weight_hyper"):
        load_with(differing)
    missing = {k: v for k, v in good.items() if not k.startswith("hypernet.refinement_blocks.14.convs.2")}
    with pytest.raises(CheckpointError, match=r"missing tensors \(hypernet.refinement_blocks.14.convs.2.weight"):
        load_with(missing)
    with pytest.raises(CheckpointError, match="layers_to_tune is 0,2 but the file has heads for layers 0,2,3,5"):
        load_with(good, layers_to_tune="0,2")
    with pytest.raises(CheckpointError, match="'SharedWeightsHyperNetResNetSeparable' is not supported"):
        load_with(good, encoder_type="SharedWeightsHyperNetResNetSeparable")
    with pytest.raises(CheckpointError, match=r"unexpected tensors \(encoder.x\)"):
        load_with({**good, "encoder.x": torch.zeros(1)})
    # without a W encoder the model still renders codes with offsets, but cannot encode
    loaded = load_with(good)
    with pytest.raises(RuntimeError, match="no W encoder"):
        loaded.model.w_codes(photo())


def test_w_encoder_file(tmp_path):
    _, path, w_path = save_tiny_hyperstyle(tmp_path)
    ckpt = torch.load(w_path, weights_only=True)
    assert any(k.startswith("decoder.") for k in ckpt["state_dict"])  # present in the file, not used
    encoder = load_w_encoder(w_path, 12)
    assert encoder(photo()).shape == (1, 12, 32)
    with pytest.raises(CheckpointError, match="is not a W encoder .*--w-encoder takes faces_w_encoder.pt"):
        load_w_encoder(path, 12)
    del ckpt["state_dict"]["encoder.linear.bias"]
    torch.save(ckpt, w_path)
    with pytest.raises(CheckpointError, match=r"missing tensors \(encoder.linear.bias\)"):
        load_w_encoder(w_path, 12)


def test_registry_lists_the_fidelity_models():
    from stylecli.registry.weights import load_registry

    reg = load_registry()
    assert reg["restyle_e4e_ffhq"].size == 808582283 and reg["restyle_e4e_ffhq"].kind == "checkpoint"
    assert reg["hyperstyle_ffhq"].sha256 == "9d4c627724e9f6b7f87f13a03b71731a4bb537875271cb46662be08a9885c364"
    assert reg["faces_w_encoder"].sources[0]["hf"] == "trysem/DualStyleGANplus"


def test_shared_hypernetwork_in_column_blocks_gives_the_same_values():
    from stylecli.models.hyperstyle import COLUMN_BLOCK, SharedWeightsHypernet

    torch.manual_seed(0)
    net = SharedWeightsHypernet(z_dim=16, in_size=512, out_size=8).requires_grad_(False)
    assert net.w2.shape[1] > 2 * COLUMN_BLOCK  # several blocks
    z = torch.randn(9, 16)
    with torch.no_grad():
        assert torch.equal(net(z, 2, blocked=True), net(z, 2))
