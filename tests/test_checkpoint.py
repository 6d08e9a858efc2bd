"""Loading official-format checkpoints strictly and safely, and the converted fast-load copy."""

import pickle
import zipfile

import pytest
import torch
from conftest import tiny_config, tiny_model

from stylecli.encoders.formats.e4e import CheckpointError, default_opts, save_checkpoint
from stylecli.encoders.loader import converted_path, load_generator, load_model
from stylecli.files.checkpoints import read_checkpoint


def official_dict(model, kind="e4e"):
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "latent_avg"}
    return {"state_dict": state, "opts": default_opts(tiny_config(kind)), "latent_avg": model.latent_avg.clone()}


def test_roundtrip_is_bit_exact_and_official_keys(tmp_path):
    model = tiny_model(seed=3)
    path = tmp_path / "m.pt"
    save_checkpoint(model, path, default_opts(tiny_config()))
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "opts", "latent_avg"}
    assert all(k.startswith(("encoder.", "decoder.")) for k in raw["state_dict"])
    assert raw["opts"]["encoder_type"] == "Encoder4Editing"
    loaded = load_model(path, use_cache=False)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    assert loaded.config.kind == "e4e" and loaded.config.size == 32


def test_psp_checkpoint_loads_as_psp(tmp_path):
    model = tiny_model("psp", seed=1)
    ckpt = official_dict(model, "psp")
    ckpt["opts"] = {"encoder_type": "GradualStyleEncoder", "output_size": 32, "start_from_latent_avg": True}
    ckpt["latent_avg"] = model.latent_avg[0].clone()  # pSp may store a single [512] mean latent
    torch.save(ckpt, tmp_path / "psp.pt")
    loaded = load_model(tmp_path / "psp.pt", use_cache=False)
    assert loaded.model.encoder.kind == "psp"
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.encode(x), model.encoder(x) + model.latent_avg[0])


def test_missing_latent_avg_without_start_from_latent_avg_means_zero(tmp_path):
    ckpt = official_dict(tiny_model())
    ckpt["opts"]["start_from_latent_avg"] = False
    del ckpt["latent_avg"]
    torch.save(ckpt, tmp_path / "m.pt")
    assert torch.count_nonzero(load_model(tmp_path / "m.pt", use_cache=False).model.latent_avg) == 0
    ckpt["opts"]["start_from_latent_avg"] = True
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="latent_avg"):
        load_model(tmp_path / "m.pt", use_cache=False)


class Payload:
    """Unpickling this would create a marker file: the loader must refuse before that happens."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = official_dict(tiny_model())
    ckpt["opts"] = {"evil": Payload(marker)}
    torch.save(ckpt, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load.*pickled"):
        load_model(tmp_path / "evil.pt")
    assert not marker.exists()
    # The same file through plain pickle would have run the payload: the test checks the right thing.
    with zipfile.ZipFile(tmp_path / "evil.pt") as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    with pytest.raises(Exception):  # noqa: B017 (persistent ids are unknown to plain pickle)
        pickle.loads(data)


def test_truncated_and_corrupt_files(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint at all" * 10)
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("trunc.pt", "junk.pt", "empty.pt"):
        with pytest.raises(CheckpointError) as err:
            load_model(tmp_path / name)
        msg = str(err.value)
        assert name in msg and "\n" not in msg and "corrupt or truncated" in msg
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")


def test_wrong_architecture(tmp_path):
    ckpt = official_dict(tiny_model())
    del ckpt["state_dict"]["encoder.latlayer1.weight"]
    torch.save(ckpt, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="1 missing tensors.*latlayer1"):
        load_model(tmp_path / "missing.pt")

    ckpt = official_dict(tiny_model())
    ckpt["state_dict"]["encoder.latlayer2.weight"] = torch.zeros(32, 16, 3, 3)
    torch.save(ckpt, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="encoder.latlayer2.weight has shape"):
        load_model(tmp_path / "shape.pt")

    ckpt = official_dict(tiny_model())
    ckpt["state_dict"]["encoder.extra.weight"] = torch.zeros(1)
    torch.save(ckpt, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unexpected tensors.*encoder.extra.weight"):
        load_model(tmp_path / "extra.pt")

    ckpt = official_dict(tiny_model())
    ckpt["opts"]["stylegan_size"] = 1024
    torch.save(ckpt, tmp_path / "size.pt")
    with pytest.raises(CheckpointError, match="1024-px generator but the decoder tensors are 32-px"):
        load_model(tmp_path / "size.pt")

    ckpt = official_dict(tiny_model())
    ckpt["opts"]["encoder_type"] = "BackboneEncoderUsingLastLayerIntoW"
    torch.save(ckpt, tmp_path / "type.pt")
    with pytest.raises(CheckpointError, match="not supported"):
        load_model(tmp_path / "type.pt")

    torch.save({"g_ema": tiny_model().decoder.state_dict()}, tmp_path / "gen.pt")
    with pytest.raises(CheckpointError, match="no 'state_dict'.*generator-only"):
        load_model(tmp_path / "gen.pt")

    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_checkpoint(tmp_path / "list.pt")


def test_half_precision_checkpoint_is_upcast(tmp_path):
    model = tiny_model()
    ckpt = official_dict(model)
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, tmp_path / "half.pt")
    loaded = load_model(tmp_path / "half.pt", use_cache=False)
    assert loaded.model.decoder.input.input.dtype == torch.float32


def test_converted_copy_is_used_on_second_load_and_rebuilt_when_broken(tiny_checkpoint):
    first = load_model(tiny_checkpoint)
    assert not first.from_cache
    cached = converted_path(tiny_checkpoint)
    assert cached.is_file() and cached.suffix == ".safetensors"
    second = load_model(tiny_checkpoint)
    assert second.from_cache
    x = torch.randn(1, 3, 256, 256)
    for k, v in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[k], v), k
    with torch.no_grad():  # same tensors; memory alignment may change the last bit of a SIMD sum
        torch.testing.assert_close(first.model.encode(x), second.model.encode(x), atol=1e-5, rtol=0)
        codes = first.model.encode(x)
        torch.testing.assert_close(first.model.synthesize(codes), second.model.synthesize(codes), atol=1e-5, rtol=0)
    cached.write_bytes(b"garbage")
    third = load_model(tiny_checkpoint)
    assert not third.from_cache and load_model(tiny_checkpoint).from_cache


def test_changed_source_invalidates_the_converted_copy(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(tiny_model(seed=1), path, default_opts(tiny_config()))
    load_model(path)
    save_checkpoint(tiny_model(seed=2), path, default_opts(tiny_config()))
    again = load_model(path)
    assert not again.from_cache
    assert torch.equal(again.model.decoder.input.input, tiny_model(seed=2).decoder.input.input)


def test_load_generator_from_g_ema_and_from_checkpoint(tmp_path, tiny_checkpoint):
    model = tiny_model()
    torch.save({"g_ema": model.decoder.state_dict(), "latent_avg": torch.zeros(32)}, tmp_path / "sg2.pt")
    for path in (tmp_path / "sg2.pt", tiny_checkpoint):
        g = load_generator(path)
        codes = torch.randn(1, g.n_latent, 32)
        with torch.no_grad():
            torch.testing.assert_close(g(codes), model.decoder(codes))
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not a StyleGAN2 generator"):
        load_generator(tmp_path / "bad.pt")
