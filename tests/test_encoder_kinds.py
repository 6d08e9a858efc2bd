"""The encoder kind table: a new kind is a table row, and the CLI, the batch jobs and the browser editor's backend
use it by its capabilities alone; a duck-typed encoder gets a one-pass encoder's capabilities."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model
from helpers import invoke, records
from PIL import Image
from torch import Tensor

from stylecli.editing import resolve_edit
from stylecli.encoders import kinds
from stylecli.encoders.base import (
    ONE_PASS,
    Capabilities,
    Encoded,
    LoadedEncoder,
    capabilities,
    step_renders,
    subnetworks,
    weights_kind,
)
from stylecli.errors import UsageError
from stylecli.pipeline.editor import FaceEditor, preprocess, to_uint8

TOY_SCALE = 0.5
EDIT_STRENGTH = 3


class ToyEncoder:
    """Not a module, not a known class: the mean latent shifted by the crop's mean brightness."""

    capabilities = Capabilities(kind="toy", label="Toy", tunable=False)

    def __init__(self, latent_avg: Tensor, scale: float):
        self.latent_avg = latent_avg
        self.scale = scale

    @property
    def n_styles(self) -> int:
        return self.latent_avg.shape[0]

    def encode(self, x: Tensor) -> Encoded:
        shift = self.scale * x.mean(dim=(1, 2, 3))[:, None, None]
        return Encoded(self.latent_avg.to(x.device)[None] + shift)


def toy_codes(face_png: Path) -> Tensor:
    """What the toy encoder gives the test photo, computed here without the table."""
    model = tiny_model()
    x = preprocess(np.asarray(Image.open(face_png).convert("RGB")))[None]
    return ToyEncoder(model.latent_avg.reshape(model.decoder.n_latent, -1), TOY_SCALE).encode(x).codes


def render(codes: Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(tiny_model().decoder(codes, input_is_latent=True, randomize_noise=False))


@pytest.fixture
def toy_kind(monkeypatch):
    """The toy kind registered in a copy of the table (the real one is left as it was); the paths it loaded."""
    from stylecli.encoders.loader import load_generator

    monkeypatch.setattr(kinds, "KINDS", list(kinds.KINDS))
    loaded: list[Path] = []

    def load(path, ckpt, options):
        if options:
            raise UsageError(f"{path}: a toy checkpoint takes no options ({', '.join(options)})")
        loaded.append(Path(path))
        generator = load_generator(path)
        latent_avg = ckpt["latent_avg"].reshape(generator.n_latent, -1)
        return LoadedEncoder(ToyEncoder(latent_avg, float(ckpt["opts"]["toy_scale"])), generator, ckpt["opts"],
                             "toy", Path(path))

    kinds.register_kind(kinds.Kind("toy", lambda ckpt: "toy_scale" in ckpt.get("opts", {}), load, ToyEncoder))
    return loaded


@pytest.fixture
def toy_checkpoint(tmp_path) -> Path:
    """The tiny e4e model's generator and mean latent, with opts that say toy (and no encoder weights: read as
    e4e, the file is refused)."""
    model = tiny_model()
    path = tmp_path / "toy.pt"
    torch.save({"opts": {"toy_scale": TOY_SCALE},
                "state_dict": {f"decoder.{k}": v for k, v in model.decoder.state_dict().items()},
                "latent_avg": model.latent_avg}, path)
    return path


def test_a_toy_kind_through_the_table(tmp_path, toy_kind, toy_checkpoint, face_png):
    assert [k.name for k in kinds.KINDS][-1] == "e4e"  # registered before the fallback
    assert kinds.checkpoint_kind(toy_checkpoint)[0] == "toy"
    codes = toy_codes(face_png)

    out = tmp_path / "inv"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", toy_checkpoint, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert toy_kind == [toy_checkpoint]  # loaded by the toy row's loader
    assert set(records(result)[0]["outputs"].values()) == {str(out / "face.npy"), str(out / "face_inversion.png")}
    assert np.abs(np.load(out / "face.npy") - codes[0].numpy()).max() < 1e-6
    inversion = np.asarray(Image.open(out / "face_inversion.png")).astype(int)
    assert np.abs(inversion - render(codes)[0]).max() <= 1

    # edit the photo and the saved latent: both render the toy code moved along the direction
    edited = render(resolve_edit("sefa:0", codes.shape[1], tiny_model().decoder).apply(codes, EDIT_STRENGTH))[0]
    assert np.abs(edited.astype(int) - render(codes)[0]).max() > 10  # (an edit left out would be seen)
    for source, dest in ((face_png, tmp_path / "a"), (out / "face.npy", tmp_path / "b")):
        result = invoke("edit", source, "--no-align", "--checkpoint", toy_checkpoint, "-d", "sefa:0",
                        "-s", EDIT_STRENGTH, "-o", dest, "--json")
        assert result.exit_code == 0, result.output
        assert [p.name for p in dest.glob("face_*.png")] == ["face_sefa-0+3.png"]
        assert np.abs(np.asarray(Image.open(dest / "face_sefa-0+3.png")).astype(int) - edited).max() <= 1
    assert len(toy_kind) == 3

    # its capabilities, not its class, decide: one pass (no --save-steps), not tunable, its own label
    result = invoke("invert", face_png, "--no-align", "--checkpoint", toy_checkpoint, "--save-steps", "-o", out)
    assert result.exit_code == 2 and "one pass" in result.output
    result = invoke("invert", face_png, "--no-align", "--checkpoint", toy_checkpoint, "--steps", 2, "-o", out)
    assert result.exit_code == 2 and "takes no options (steps)" in result.output
    from stylecli.serve.backend import Backend

    backend = Backend(FaceEditor.from_checkpoint(toy_checkpoint, "cpu"), ["--checkpoint", str(toy_checkpoint)])
    assert backend.kind == "Toy" and not backend.tunable


def test_without_the_row_the_toy_file_is_read_as_e4e_and_refused(toy_checkpoint, face_png):
    assert kinds.checkpoint_kind(toy_checkpoint)[0] == "e4e"
    result = invoke("invert", face_png, "--no-align", "--checkpoint", toy_checkpoint, "-o", toy_checkpoint.parent)
    assert result.exit_code == 2, result.output
    assert result.output == (f"stylecli: error: {toy_checkpoint}: not an e4e/pSp checkpoint (missing tensor "
                             "encoder.styles.0)\n")


def test_a_duck_typed_encoder_is_a_one_pass_encoder(tiny_checkpoint):
    class Duck:
        n_styles = 4

        def encode(self, x: Tensor) -> Encoded:
            return Encoded(torch.zeros(len(x), 4, 8))

    duck = Duck()
    caps = capabilities(duck)
    assert caps == replace(ONE_PASS, label="Duck")  # its class names it (not "e4e", which it is not)
    assert caps.passes == 1 and not caps.more_passes and caps.weights_kind is None and kinds.weights_store(duck) is None
    assert caps.tunable and caps.options == frozenset() and subnetworks(duck) == {}
    with pytest.raises(UsageError, match="one pass"):
        step_renders(duck, duck.encode(torch.zeros(1, 3, 8, 8)))
    assert weights_kind({"convs.0.conv.weight": torch.zeros(1)}) is None  # plain GeneratorWeights (tuning)
    # the e4e encoder declares the same, and exports itself as one network
    e4e = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu").encoder
    assert capabilities(e4e).more_passes is False and subnetworks(e4e) == {"encoder": e4e}


def test_builtin_kinds_and_spec(tiny_checkpoint):
    assert [k.name for k in kinds.KINDS] == ["restyle", "hyperstyle", "e4e"]
    hyper = kinds.kind("hyperstyle")
    assert hyper.weights.kind == hyper.capabilities.weights_kind == "hyperstyle" and not hyper.capabilities.tunable
    assert [k.name for k in kinds.KINDS if k.weights is not None] == ["hyperstyle"]
    assert kinds.weights_stores() == [hyper.weights] and kinds.weights_store(hyper.encoder) is hyper.weights
    assert hyper.weights.path_of(Path("out/photo.npy")) == Path("out/photo.hyperstyle.npz")
    assert kinds.kind("restyle").capabilities.options == {"steps"}
    spec = pickle.loads(pickle.dumps(kinds.EncoderSpec(path=str(tiny_checkpoint))))  # crosses a process boundary
    loaded = spec.build()
    assert loaded.kind == "e4e" and capabilities(loaded.encoder).kind == "e4e"
    with pytest.raises(UsageError, match="one pass"):
        kinds.EncoderSpec(path=str(tiny_checkpoint), options={"steps": 2}).build()
    with pytest.raises(UsageError):
        kinds.EncoderSpec()


def test_a_registry_spec_carries_its_entry_domain(tiny_checkpoint, tmp_path, monkeypatch):
    """The tiny model claims ffhq (the training default) with a non-ffhq style count: unknown from its opts; built
    by registry name, the entry's domain wins (as FaceEditor.from_pretrained)."""
    from stylecli.registry import weights

    reg = tmp_path / "weights.toml"
    reg.write_text('[tiny_cars]\nwhat = "t"\nkind = "checkpoint"\ndomain = "cars"\nfile = "c.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n'
                   '[tiny_data]\nwhat = "t"\nkind = "direction"\nfile = "d.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    monkeypatch.setattr(weights, "resolve", lambda name, *a, **k: {"tiny_cars": tiny_checkpoint}[name])
    assert kinds.EncoderSpec(path=str(tiny_checkpoint)).build().domain is None
    assert kinds.pretrained_checkpoint("tiny_cars") == (tiny_checkpoint, "cars")
    loaded = kinds.EncoderSpec(name="tiny_cars").build()
    assert loaded.kind == "e4e" and loaded.domain == "cars"
    assert FaceEditor.from_pretrained("tiny_cars", "cpu").domain == "cars"
    with pytest.raises(UsageError, match="--model tiny_data: is a direction file, not an encoder checkpoint"):
        kinds.EncoderSpec(name="tiny_data").build()


def test_the_formats_decide_by_the_domain_the_opts_name():
    """HyperStyle's default W encoder is for faces, ReStyle's cars models are refused: both by domains.named_domain
    (dataset_type as written, without the ffhq style-count check of domain_of)."""
    from stylecli.domains import named_domain
    from stylecli.encoders.formats.e4e import CheckpointError
    from stylecli.encoders.formats.restyle import restyle_from_state
    from stylecli.encoders.hyperstyle import _w_encoder_path

    assert named_domain({"dataset_type": "ffhq_hypernet"}) == "ffhq" and named_domain({"dataset_type": ""}) is None
    assert named_domain({"dataset_type": "cars_encode"}) == "cars" and named_domain({}) is None
    with pytest.raises(CheckpointError, match="a HyperStyle model for cars_hypernet: give its W encoder"):
        _w_encoder_path(None, {"dataset_type": "cars_hypernet"}, "h.pt")
    with pytest.raises(CheckpointError, match="ReStyle cars models"):
        restyle_from_state({}, {"encoder_type": "BackboneEncoder", "dataset_type": "cars_encode"}, None, "r.pt")
