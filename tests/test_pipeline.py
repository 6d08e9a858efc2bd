"""The FaceEditor: every stage on a tiny official-format checkpoint, batching, typed results, and the two seams
(encoders returning Encoded, per-photo generator weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from stylecli.convert import preprocess, to_uint8
from stylecli.encoders import E4EEncoder, Encoded, Encoder
from stylecli.errors import InputError
from stylecli.pipeline import FaceEditor
from stylecli.results import PhotoResult

ASTRO = data.astronaut()


@pytest.fixture
def editor(tiny_checkpoint) -> FaceEditor:
    return FaceEditor.from_checkpoint(tiny_checkpoint, "cpu", batch_size=2)


def crops(n: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.roll(ASTRO[:256, 128:384], 7 * i, axis=1)) for i in range(n)]


def test_encode_matches_the_model_and_batches_in_chunks(editor, tiny_checkpoint):
    from stylecli.loader import load_model

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
    class Tuned(torch.nn.Module):
        """An encoder that also returns generator weights (as HyperStyle or PTI do)."""

        n_styles = editor.n_styles

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def encode(self, x):
            out = self.inner.encode(x)
            w = self.inner_weight * 0.5
            return Encoded(out.codes, [{"to_rgb1.conv.weight": w} for _ in range(len(x))], [out.codes, out.codes])

    tuned = Tuned(editor.encoder)
    tuned.inner_weight = editor.generator.state_dict()["to_rgb1.conv.weight"]
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

    from stylecli.checkpoint import default_opts, save_checkpoint
    from stylecli.editing import resolve_edit
    from stylecli.editing.base import EditError

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
    from stylecli import evaluation

    waits = []
    monkeypatch.setattr(evaluation, "synchronize", lambda device: waits.append(device))
    result = evaluation.evaluate(editor, [("a", c) for c in crops(4)], ["l2"], "tiny", batch_size=2)
    assert len(waits) == 6 and result.images == 4  # before encode, after encode, after synthesis; per batch
