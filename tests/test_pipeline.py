"""The FaceEditor: every stage on a tiny official-format checkpoint, batching, typed results, and the two seams
(encoders returning Encoded, per-photo generator weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import Tuned
from skimage import data

from stylecli.convert import preprocess, to_uint8
from stylecli.encoders.base import Encoded, Encoder
from stylecli.encoders.e4e import E4EEncoder
from stylecli.errors import InputError
from stylecli.pipeline.editor import FaceEditor
from stylecli.pipeline.results import PhotoResult

ASTRO = data.astronaut()


@pytest.fixture
def editor(tiny_checkpoint) -> FaceEditor:
    return FaceEditor.from_checkpoint(tiny_checkpoint, "cpu", batch_size=2)


def crops(n: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.roll(ASTRO[:256, 128:384], 7 * i, axis=1)) for i in range(n)]


def test_encode_matches_the_model_and_batches_in_chunks(editor, tiny_checkpoint):
    from stylecli.encoders.loader import load_model

    model = load_model(tiny_checkpoint).model
    images = crops(5)
    calls = []
    original = editor.encoder.encode
    editor.encoder.encode = lambda x: calls.append(len(x)) or original(x)
    encoded = editor.encode(images)
    assert calls == [2, 2, 1]
    assert isinstance(encoded, Encoded) and encoded.weights is None and encoded.steps is None
    with torch.inference_mode():
        direct = model.encode(torch.stack([preprocess(im) for im in images]))
    assert torch.allclose(encoded.codes, direct, atol=1e-5)
    assert isinstance(editor.encoder, Encoder) and isinstance(editor.encoder, E4EEncoder)


def test_call_returns_typed_results_with_edits(editor):
    from stylecli.editing.interfacegan import DirectionEdit

    direction = torch.randn(1, editor.style_dim)
    edit = DirectionEdit(label="d", direction=direction)
    results = editor(crops(3), edits=[(edit, 2.0), [(edit, 1.0), (edit, -1.0)]], align=False)
    assert len(results) == 3 and all(isinstance(r, PhotoResult) for r in results)
    face = results[1].faces[0]
    assert face.box is None and face.quad is None and face.crop.shape == (256, 256, 3)
    assert [e.name for e in face.edits] == ["d+2", "d+1_d-1"]
    assert np.allclose(face.edits[0].code, face.code + 2.0 * direction.numpy(), atol=1e-5)
    assert np.allclose(face.edits[1].code, face.code, atol=1e-5)
    assert face.reconstruction.shape == (editor.size, editor.size, 3)
    assert np.array_equal(face.reconstruction, editor.synthesize(face.code)[0])
    assert np.array_equal(face.edits[0].image, editor.synthesize(face.edits[0].code)[0])
    assert not np.array_equal(face.edits[0].image, face.reconstruction)


def test_generator_weights_override_one_photo_only(editor):
    codes = editor.encode(crops(3)).codes
    plain = editor.render(codes)
    name = "convs.1.conv.weight"
    original = editor.generator.state_dict()[name].clone()
    changed = original + 0.5 * torch.randn(original.shape, generator=torch.Generator().manual_seed(0))
    out = editor.render(codes, [None, {name: changed}, None])
    assert torch.equal(out[0], plain[0]) and torch.equal(out[2], plain[2])
    assert not torch.allclose(out[1], plain[1], atol=1e-3)
    same = editor.render(codes, [None, {name: editor.generator.state_dict()[name].clone()}, None])
    assert torch.allclose(same, plain, atol=1e-5)
    assert torch.equal(editor.generator.state_dict()[name], original)  # the shared generator is untouched
    assert np.array_equal(editor.synthesize(codes, [None, None, None]), to_uint8(plain))


def test_encoded_weights_flow_into_the_results(editor):
    tuned = Tuned(editor)
    plain = editor(crops(3), align=False)
    editor.encoder = tuned
    encoded = editor.encode(crops(3))
    assert len(encoded.weights) == 3 and len(encoded.steps) == 2 and encoded.steps[0].shape[0] == 3
    results = editor(crops(3), align=False)
    assert results[0].faces[0].weights is not None
    assert not np.array_equal(results[0].faces[0].reconstruction, plain[0].faces[0].reconstruction)


def test_codes_of_another_model_are_refused_with_both_shapes(editor):
    with pytest.raises(InputError, match=r"wide.npy: latent is \[8, 16\]; this model takes \[8, 32\]"):
        editor.check_codes(np.zeros((8, 16), np.float32), "wide.npy")


def test_photo_stages_detect_align_and_paste_back(editor):
    faces = editor.detect(ASTRO)
    assert faces and faces[0].quad.shape == (4, 2)
    small, large = editor.align(ASTRO, faces[0]), editor.align(ASTRO, faces[0], size=1024)
    assert small.shape == (256, 256, 3) and large.shape == (1024, 1024, 3)
    from PIL import Image

    down = np.asarray(Image.fromarray(large).resize((256, 256), Image.BILINEAR)).astype(int)
    assert np.abs(down - small.astype(int)).mean() < 12  # the same face at another resolution
    result = editor(ASTRO, edits=[("sefa:0", 3.0)], paste_back=True)[0]
    assert result.faces[0].box == faces[0].box and "sefa-0+3" in result.pasted
    pasted = result.pasted["sefa-0+3"]
    assert pasted.shape == ASTRO.shape and np.array_equal(pasted[-40:], ASTRO[-40:])
    assert not np.array_equal(pasted, ASTRO)


def test_registry_directions_are_refused_on_a_model_of_another_domain(tmp_path):
    from conftest import tiny_config, tiny_model

    from stylecli.editing import resolve_edit
    from stylecli.editing.base import EditError
    from stylecli.encoders.formats.e4e import default_opts, save_checkpoint

    cars = tmp_path / "cars.pt"
    save_checkpoint(tiny_model(), cars, default_opts(tiny_config(), dataset_type="cars_encode"))
    editor = FaceEditor.from_checkpoint(cars, "cpu")
    assert editor.domain == "cars"
    for spec in ("age", "smile", "pose"):
        with pytest.raises(EditError, match=f"{spec}: a direction for ffhq models, and this model is a cars model"):
            editor.resolve_edit(spec)
    with pytest.raises(EditError, match="ffhq"):
        resolve_edit("ganspace:smile", 18, domain="cars")
    np.save(tmp_path / "mine.npy", np.ones((1, editor.style_dim), np.float32))
    assert editor.resolve_edit(str(tmp_path / "mine.npy")).label == "mine"  # a file direction is trusted
    assert editor.resolve_edit("sefa:0").label == "sefa-0"


def test_evaluation_timings_wait_for_the_device(editor, monkeypatch):
    """Each timer read around encode and synthesize comes after the device has finished its queued work, and the
    work goes through the FaceEditor's stages (its batching and precision)."""
    from stylecli.evaluation import driver as evaluation

    events = []
    monkeypatch.setattr(evaluation, "synchronize", lambda device: events.append("sync"))
    monkeypatch.setattr(evaluation, "perf_counter", lambda: events.append("clock") or float(len(events)))
    encode, render = editor.encode, editor.render
    monkeypatch.setattr(editor, "encode", lambda *a, **k: events.append("encode") or encode(*a, **k))
    monkeypatch.setattr(editor, "render", lambda *a, **k: events.append("render") or render(*a, **k))
    result = evaluation.evaluate(editor, [("a", c) for c in crops(4)], ["l2"], "tiny", batch_size=2)
    batch = ["sync", "clock", "encode", "sync", "clock", "render", "sync", "clock"]
    assert events == batch * 2 and result.images == 4
    assert result.encode_s == result.synthesize_s == 6.0  # clock reads 2 -> 5 -> 8 per batch: 3 + 3 each


def test_lec_draws_each_photo_with_its_own_generator_weights(editor):
    from stylecli.editing.interfacegan import DirectionEdit
    from stylecli.evaluation import driver as evaluation
    from stylecli.evaluation.metrics import pool256

    direction = torch.randn(1, editor.style_dim, generator=torch.Generator().manual_seed(3))
    edit = DirectionEdit(label="d", direction=direction)
    images = [("a", c) for c in crops(2)]
    editor.encoder = Tuned(editor)
    result = evaluation.evaluate(editor, images, ["lec"], "tuned", edit, 3.0, batch_size=2)
    x = torch.stack([preprocess(c) for _, c in images])
    first = editor.encode(x)

    def lec(weights):
        drawn = pool256(editor.render(edit.apply(first.codes, 3.0), weights))
        return (first.codes - edit.apply(editor.encode(drawn).codes, -3.0)).flatten(1).norm(dim=1).numpy()

    assert np.allclose(result.stats["lec"].values, lec(first.weights), atol=1e-4)
    assert not np.allclose(lec(first.weights), lec(None), atol=1e-3)  # the weights change the value


def test_a_photo_without_a_face_does_not_spoil_the_others(editor, tmp_path):
    blank = np.full((160, 160, 3), 128, np.uint8)
    missing = tmp_path / "missing.png"
    results = editor([ASTRO, blank, missing], edits=[("sefa:0", 2.0)], paste_back=True)
    assert results[0].error is None and len(results[0].faces) == 1 and "sefa-0+2" in results[0].pasted
    assert "no face found" in results[1].error and results[1].faces == [] and results[1].pasted == {}
    assert str(missing) in results[2].error and results[2].pixels is None and results[2].faces == []
    alone = editor(ASTRO, edits=[("sefa:0", 2.0)])[0].faces[0]
    assert np.array_equal(alone.edits[0].image, results[0].faces[0].edits[0].image)


def test_paste_back_without_alignment_is_refused(editor):
    from stylecli.errors import UsageError

    with pytest.raises(UsageError, match="paste_back=True needs align=True"):
        editor(crops(1), edits=[("sefa:0", 2.0)], align=False, paste_back=True)


def test_an_ffhq_claim_needs_an_ffhq_generator_and_a_registry_model_has_its_entry_domain(tmp_path, monkeypatch):
    """`stylecli train` writes dataset_type ffhq_encode whatever the generator: a 16-style (512 px, as cars)
    model claiming ffhq has an unknown domain; from_pretrained takes the registry entry's."""
    from conftest import randomize

    from stylecli.domains import domain_of
    from stylecli.editing.base import EditError
    from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint
    from stylecli.registry import weights

    config = ModelConfig(size=512, kind="e4e", style_dim=32, widths=(16, 16, 32, 32),
                         channels={4: 16, 8: 16, 16: 16, 32: 8, 64: 8, 128: 8, 256: 8, 512: 8}, n_mlp=2)
    trained = tmp_path / "trained.pt"
    save_checkpoint(randomize(config.build()), trained, default_opts(config))  # dataset_type ffhq_encode
    age = tmp_path / "age.pt"
    torch.save(torch.randn(1, 32), age)
    reg = tmp_path / "weights.toml"
    reg.write_text('[e4e_cars]\nwhat = "t"\nkind = "checkpoint"\ndomain = "cars"\nfile = "c.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n'
                   '[age]\nwhat = "t"\nkind = "direction"\ndomain = "ffhq"\nfile = "age.pt"\nlicense = "t"\n'
                   'sources = [{ manual = "https://example.invalid" }]\n')
    monkeypatch.setenv("STYLECLI_WEIGHTS_TOML", str(reg))
    monkeypatch.setattr(weights, "resolve", lambda name, *a, **k: {"e4e_cars": trained, "age": age}[name])

    local = FaceEditor.from_checkpoint(trained, "cpu")
    assert local.n_styles == 16 and local.domain is None
    assert local.resolve_edit("age").label == "age"  # unknown domain: only the shape is checked
    registry = FaceEditor.from_pretrained("e4e_cars", "cpu")
    assert registry.domain == "cars"
    with pytest.raises(EditError, match="a direction for ffhq models, and this model is a cars model"):
        registry.resolve_edit("age")
    assert domain_of({"dataset_type": "ffhq_encode"}, 18) == "ffhq"
    assert domain_of({"dataset_type": "ffhq_encode"}, 14) is None and domain_of({}, 18) is None
    assert domain_of({"dataset_type": "cars_encode"}, 16) == "cars"  # a deliberate choice is taken as written
    hypernet = {"dataset_type": "ffhq_hypernet"}  # HyperStyle's default: the same rule
    assert domain_of(hypernet, 18) == "ffhq" and domain_of(hypernet, 8) is None
