"""Output names (stylecli.naming) and the per-photo weights beside a latent (stylecli.photo_weights), through the
library: no CLI."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_fidelity import save_tiny_hyperstyle

from stylecli import naming
from stylecli.encoders.base import Capabilities
from stylecli.errors import InputError
from stylecli.photo_weights import (
    TUNED,
    has_tuned_weights,
    read_offsets,
    read_tuned_weights,
    remove_stale_weights,
    tuning_record,
    weights_file,
    weights_outputs,
    write_photo_weights,
)
from stylecli.tuning.store import TunedWeightsError

OUT = Path("out")


def edit(label: str, default: float = 3.0) -> SimpleNamespace:
    return SimpleNamespace(label=label, default_strength=default)


# -- names --------------------------------------------------------------------------------------------------------

def test_latents_are_recognized_in_any_case():
    assert naming.is_latent("a/photo.npy") and naming.is_latent(Path("PHOTO.NPY")) and naming.is_latent("x.Npy")
    assert not naming.is_latent("photo.png") and not naming.is_latent("photo.npz") and not naming.is_latent("npy")


def test_stems_are_unique_per_batch_and_faces_are_numbered():
    stems = naming.output_stems([Path("a/photo.jpg"), Path("b/photo.png"), Path("x.jpg"), Path("c/photo.webp")])
    assert stems == ["photo", "photo-2", "x", "photo-3"]
    assert naming.face_stem("photo", 0) == "photo_face0" and naming.face_stem("photo_tuned", 2) == "photo_tuned_face2"


def test_variant_names_and_sweep_numbering():
    from stylecli.batch.jobs import EditPlan
    from stylecli.pipeline.editor import variant_of

    assert [naming.strength_label(s) for s in (3, -2.5, 0, 0.5)] == ["+3", "-2.5", "+0", "+0.5"]
    assert variant_of([(edit("age"), None), (edit("smile"), -2)]).name == "age+3_smile-2"
    assert naming.variant_name([("sefa-0", 1.5)]) == "sefa-0+1.5"
    # sweeps sort in sweep order: one digit up to ten strengths, zero-padded beyond
    assert [v.name for v in EditPlan([(edit("age"), None)], sweep=[-4, 0, 4]).variants()] == \
        ["age_0-4", "age_1+0", "age_2+4"]
    names = naming.sweep_names("age", [float(s) for s in range(-5, 6)])
    assert names[0] == "age_00-5" and names[10] == "age_10+5" and names == sorted(names)


def test_layers_keep_and_mix_names():
    assert naming.layers_tag((0, 1, 2, 3, 8)) == "0-3.8" and naming.layers_tag((4,)) == "4"
    assert naming.with_layers("age", (8, 9, 10, 12)) == "age_layers8-10.12"
    assert naming.keep_tag(("gender", "sefa:2", "dirs/glasses.npy")) == "gender.sefa2.glasses"
    assert naming.with_keep("age", ("gender", "sefa:2")) == "age_keep-gender.sefa2"
    assert naming.mix_name("a", "b", range(8, 18)) == "a+b_layers8-17"
    assert naming.mix_name("a", "b", (0, 1), 0.5) == "a+b_layers0-1_alpha0.5"


def test_file_names_of_a_face():
    assert naming.latent_path(OUT, "photo") == OUT / "photo.npy"
    assert naming.inversion_path(OUT, "photo") == OUT / "photo_inversion.png"
    assert naming.step_path(OUT, "photo", 2) == OUT / "photo_step2.png"
    assert naming.aligned_path(OUT, "photo_face1") == OUT / "photo_face1_aligned.png"
    assert naming.sidecar_path(OUT, "photo") == OUT / "photo.align.json"
    assert naming.sidecar_of(OUT / "photo_age+0.5.npy") == OUT / "photo_age+0.5.align.json"
    assert naming.variant_path(OUT, "photo", "age+3") == OUT / "photo_age+3.png"
    assert naming.latent_path(OUT, naming.variant_stem("photo", "age+3")) == OUT / "photo_age+3.npy"
    assert naming.grid_path(OUT, "photo", "age") == OUT / "photo_age_grid.png"
    assert naming.gif_path(OUT, "photo", "age") == OUT / "photo_age.gif"
    assert naming.pasted_path(OUT, "photo", "age+3") == OUT / "photo_age+3_pasted.png"
    assert naming.pasted_path(OUT, "photo", "age+3", "seamless") == OUT / "photo_age+3_pasted-seamless.png"
    assert naming.hyperstyle_offsets_path(OUT / "photo.npy") == OUT / "photo.hyperstyle.npz"
    assert naming.tuned_weights_path("out/photo_tuned.npy") == OUT / "photo_tuned.tuned.safetensors"


def test_settings_tag_names_what_changes_the_pixels():
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.tuning.pti import TuningConfig
    from stylecli.tuning.stage import Tuner

    assert naming.settings_tag(None, 5) == "" and naming.settings_tag(5, 5) == ""
    assert naming.settings_tag(3, 5, "fp16") == "_steps3_fp16" and naming.settings_tag(None, 5, "bf16") == "_bf16"
    assert Tuner().name_tag() == "_tuned"
    assert Tuner(TuningConfig(steps=100, lr=0.001)).name_tag() == "_tuned-s100-lr0.001"
    assert Tuner(TuningConfig(lpips_stop=0.0)).name_tag() == "_tuned-stop0"
    name_tag = FaceEditor.settings_tag  # (on stand-ins for the editor: only its encoder and precision are read)
    plain = SimpleNamespace(encoder=SimpleNamespace(), precision="fp32")
    assert name_tag(plain, None) == "" and name_tag(plain, Tuner()) == "_tuned"
    restyle = SimpleNamespace(encoder=SimpleNamespace(steps=3), precision="bf16")
    tuner = Tuner(TuningConfig(steps=100, lr=0.01, locality=True), pivot="project")
    assert name_tag(restyle, tuner) == "_steps3_bf16_tuned-s100-lr0.01-locality-project"
    assert name_tag(SimpleNamespace(encoder=SimpleNamespace(steps=5), precision="fp32"), None) == ""


def test_an_edit_job_declares_every_name_before_any_work(tiny_checkpoint):
    from stylecli.batch.jobs import EditJob, EditPlan, FaceOptions
    from stylecli.pipeline.editor import FaceEditor

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    plan = EditPlan([(editor.resolve_edit("sefa:0"), None)], sweep=[-1, 1], grid=True, gif=True, save_latent=True)
    job = EditJob(editor, FaceOptions(align=False), plan)
    got = list(job.expected_outputs(Path("in/face.png"), "face", OUT).values())
    assert got == [OUT / n for n in ("face_sefa-0_0-1.png", "face_sefa-0_0-1.npy", "face_sefa-0_1+1.png",
                                     "face_sefa-0_1+1.npy", "face_sefa-0_grid.png", "face_sefa-0.gif")]


# -- per-photo weights --------------------------------------------------------------------------------------------

def test_which_weights_file_a_latent_has():
    latent = OUT / "photo.npy"
    e4e = SimpleNamespace()  # no capabilities: a one-pass encoder, the shared generator
    hyper = SimpleNamespace(capabilities=Capabilities(kind="hyperstyle", weights_kind="hyperstyle"))
    assert weights_file(latent, e4e, tuned=False) is None and weights_outputs(latent, e4e, False) == {}
    assert weights_file(latent, e4e, tuned=True) == (TUNED, OUT / "photo.tuned.safetensors")
    assert weights_outputs(latent, hyper, False) == {"offsets": OUT / "photo.hyperstyle.npz"}
    assert weights_file(latent, hyper, tuned=True) == (TUNED, OUT / "photo.tuned.safetensors")  # tuned wins


def test_tuned_weights_written_then_read_back(tmp_path, tiny_checkpoint):
    from stylecli.pipeline.editor import FaceEditor

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    name, base = next(iter(editor.generator.state_dict().items()))
    weights = {name: base + 0.25}
    code, latent = np.ones((editor.n_styles, editor.style_dim), np.float32), tmp_path / "photo.npy"
    written = write_photo_weights(editor, latent, code, weights, {"max_steps": "5"})
    assert written == tmp_path / "photo.tuned.safetensors" and has_tuned_weights(latent)
    assert tuning_record(latent) == {"max_steps": "5"}  # how it was tuned, without the file's own records
    back = read_tuned_weights(latent, editor.generator, code=code)
    assert torch.allclose(back[name], weights[name], atol=1e-2)
    with pytest.raises(TunedWeightsError, match="another latent"):
        read_tuned_weights(latent, editor.generator, code=code + 1)
    # no tuning and a one-pass encoder: nothing beside the latent; declared weights missing: a caller's bug
    assert write_photo_weights(editor, tmp_path / "plain.npy", code, None) is None
    assert not list(tmp_path.glob("plain.*"))
    with pytest.raises(ValueError, match="no tuned generator weights"):
        write_photo_weights(editor, tmp_path / "none.npy", code, None, {"max_steps": "5"})


def test_hyperstyle_offsets_written_then_read_back(tmp_path, tiny_checkpoint, face_png):
    from stylecli.pipeline.editor import FaceEditor

    _, path, w_path = save_tiny_hyperstyle(tmp_path)
    editor = FaceEditor.from_checkpoint(path, "cpu", w_encoder=w_path, steps=2)
    encoded = editor.encode([np.asarray(Image.open(face_png).convert("RGB"))])
    code, weights = encoded.codes[0].numpy(), encoded.weights[0]
    latent = tmp_path / "photo.npy"
    assert write_photo_weights(editor, latent, code, weights) == tmp_path / "photo.hyperstyle.npz"
    state = read_offsets(editor.encoder, latent, code)
    assert state.n_terms == weights.state.n_terms
    for ours, theirs in zip(state.codes, weights.state.codes):
        assert (ours is None) == (theirs is None) and (ours is None or torch.allclose(ours, theirs))
    with pytest.raises(InputError, match="another latent"):
        read_offsets(editor.encoder, latent, code + 1)
    with pytest.raises(InputError, match="is missing"):
        read_offsets(editor.encoder, tmp_path / "other.npy", code)
    plain = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")  # another encoder refuses a HyperStyle latent
    with pytest.raises(InputError, match="a HyperStyle latent"):
        read_offsets(plain.encoder, latent, code)
    assert read_offsets(plain.encoder, tmp_path / "other.npy", code) is None


def test_stale_weights_files_go_except_the_one_kept(tmp_path):
    latent = tmp_path / "photo.npy"
    offsets, tuned = tmp_path / "photo.hyperstyle.npz", tmp_path / "photo.tuned.safetensors"
    other = tmp_path / "photo-2.tuned.safetensors"
    for path in (offsets, tuned, other):
        path.write_bytes(b"x")
    assert remove_stale_weights(latent, keep=tuned) == [offsets]
    assert tuned.exists() and other.exists() and not offsets.exists()
    assert remove_stale_weights(latent) == [tuned] and other.exists()
