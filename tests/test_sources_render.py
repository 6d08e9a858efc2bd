"""The pipeline's two halves (sources: input -> faces / codes with their weights; render: codes x variants ->
images), and the front ends that go through them rendering what `edit` writes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke
from PIL import Image

from stylecli.files.sheets import LABEL_HEIGHT


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def sheet_cells(sheet_path, cell: int) -> list[np.ndarray]:
    """The image cells of a one-row preview sheet, left to right (the name column is what is left of them)."""
    sheet = png(sheet_path)
    name_width = sheet.shape[1] - 3 * cell
    return [sheet[LABEL_HEIGHT : LABEL_HEIGHT + cell, name_width + c * cell : name_width + (c + 1) * cell]
            for c in range(3)]


def check_preview_matches_edit(tmp_path, latent, model_args, size: int) -> None:
    """`directions preview LATENT` shows, cell for cell, the pixels `edit LATENT` writes at -2 and +2."""
    sheet = tmp_path / "sheet.png"
    result = invoke("directions", "preview", latent, "--names", "sefa:1", "-s", 2, "--cell", size, "-o", sheet,
                    *model_args)
    assert result.exit_code == 0, result.output
    minus, zero, plus = sheet_cells(sheet, size)
    for strength, cell in ((2, plus), (-2, minus)):
        out = tmp_path / f"edit{strength}"
        result = invoke("edit", latent, "-d", "sefa:1", "-s", strength, "-o", out, *model_args)
        assert result.exit_code == 0, result.output
        (written,) = out.glob("*.png")
        assert np.array_equal(cell, png(written)), f"{written.name} differs from the sheet's cell"
    assert not np.array_equal(minus, plus)


def test_preview_of_a_hyperstyle_latent_shows_what_edit_writes(tmp_path, face_png):
    from tiny_fidelity import save_tiny_hyperstyle

    model, path, w_path = save_tiny_hyperstyle(tmp_path)
    args = ("--checkpoint", path, "--w-encoder", w_path, "--steps", 2)
    result = invoke("invert", face_png, "--no-align", *args, "-o", tmp_path / "inv")
    assert result.exit_code == 0, result.output
    latent = tmp_path / "inv" / "face_steps2.npy"
    assert (tmp_path / "inv" / "face_steps2.hyperstyle.npz").is_file()
    check_preview_matches_edit(tmp_path, latent, args, model.decoder.size)
    # without its offsets the latent would render differently: the sheet above is not the shared generator's
    from stylecli.pipeline.editor import FaceEditor

    editor = FaceEditor.from_checkpoint(path, "cpu", steps=2, w_encoder=w_path)
    shared = editor.synthesize(editor.resolve_edit("sefa:1").apply(
        editor.check_codes(np.load(latent)), 2.0))[0].astype(int)
    assert not np.array_equal(shared, png(next((tmp_path / "edit2").glob("*.png"))))


@pytest.mark.usefixtures("offline_lpips")
def test_preview_of_a_tuned_latent_shows_what_edit_writes(tmp_path, tiny_checkpoint, face_png):
    args = ("--checkpoint", tiny_checkpoint)
    tune = ("--tune", "--tune-steps", 5, "--tune-lr", "1e-2", "--tune-lpips-stop", 0)
    result = invoke("invert", face_png, "--no-align", *args, *tune, "-o", tmp_path / "inv")
    assert result.exit_code == 0, result.output
    (latent,) = (tmp_path / "inv").glob("*.npy")
    assert (tmp_path / "inv" / f"{latent.stem}.tuned.safetensors").is_file()
    check_preview_matches_edit(tmp_path, latent, args, 32)
    # the sheet and the edit render through the tuned weights, not the shared generator
    from stylecli.pipeline.editor import FaceEditor

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    shared = editor.synthesize(editor.resolve_edit("sefa:1").apply(
        editor.check_codes(np.load(latent)), 2.0))[0].astype(int)
    assert not np.array_equal(shared, png(next((tmp_path / "edit2").glob("*.png"))))


def test_face_editor_on_saved_latents_with_and_without_paste_back(tmp_path, tiny_checkpoint):
    """FaceEditor() takes saved latents: rendered as they are, pasted back into the photo their sidecar names,
    and a latent without its sidecar is that input's error (the others still computed)."""
    from skimage import data

    from stylecli.pipeline.editor import FaceEditor

    photo = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()).save(photo)
    result = invoke("invert", photo, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "inv")
    assert result.exit_code == 0, result.output
    latent = tmp_path / "inv" / "photo.npy"
    lonely = tmp_path / "lonely.npy"
    lonely.write_bytes(latent.read_bytes())
    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    plain = editor([latent], ["sefa:0"])[0]
    assert plain.error is None and plain.pixels is None and len(plain.faces) == 1
    assert np.array_equal(plain.faces[0].code, np.load(latent))
    assert np.array_equal(plain.faces[0].reconstruction, png(tmp_path / "inv" / "photo_inversion.png"))
    pasted, missing = editor([latent, lonely], ["sefa:0"], paste_back=True)
    assert pasted.error is None and pasted.pasted["sefa-0+3"].shape == data.astronaut().shape
    assert missing.faces == [] and "lonely.npy: --paste-back needs to know where the face was" in missing.error


def test_a_photo_without_a_face_keeps_its_pixels_and_notes(tmp_path, tiny_checkpoint):
    from stylecli.pipeline.editor import FaceEditor

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 200, 3), 128, np.uint8)).convert("L").save(blank)  # grayscale: a note
    (result,) = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")([blank], ["sefa:0"])
    assert "no face found" in result.error and result.faces == []
    assert result.pixels.shape == (300, 200, 3) and result.notes and result.source == blank


def test_sources_read_photos_crops_and_latents(tmp_path, tiny_checkpoint, face_png):
    from stylecli.errors import InputError
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.pipeline.sources import encode_faces, open_source

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    crop = open_source(editor, face_png, align=False)
    assert crop.path == face_png and crop.photo is not None and not crop.is_latent
    assert crop.faces[0].crop.shape == (256, 256, 3) and crop.faces[0].index is None
    encoded = encode_faces(editor, crop.faces)
    assert encoded.codes.shape == (1, 8, 32) and encoded.weights is None
    latent = tmp_path / "face.NPY"  # a latent whatever the case of its suffix
    np.save(tmp_path / "face.npy", encoded.codes[0].numpy())
    (tmp_path / "face.npy").rename(latent)
    again = open_source(editor, latent)
    assert again.is_latent and again.photo is None
    assert np.array_equal(encode_faces(editor, again.faces).codes.numpy(), encoded.codes.numpy())
    with pytest.raises(InputError, match="a latent file; this command needs an image"):
        open_source(editor, latent, latents=False)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(blank)
    with pytest.raises(InputError, match="no face found in .*blank.png"):
        open_source(editor, blank)
    with pytest.raises(InputError, match="my own words"):
        open_source(editor, blank, no_face="my own words")


def test_render_variants_matches_the_editors_stages(tiny_checkpoint, face_png):
    """One generator batch of every variant of every face (and the reconstructions) gives the pixels of
    editing and synthesizing each face alone."""
    import torch

    from stylecli.encoders.base import Encoded
    from stylecli.pipeline.editor import FaceEditor
    from stylecli.pipeline.render import render_variants

    editor = FaceEditor.from_checkpoint(tiny_checkpoint, "cpu")
    codes = editor.encode([png(face_png).astype(np.uint8), np.roll(png(face_png), 40, 1).astype(np.uint8)]).codes
    variants = editor.variants(["sefa:0", [("sefa:1", 2.0), ("sefa:2", -1.0)]])
    out = render_variants(editor, Encoded(codes), variants, reconstruct=True)
    assert out.images.shape == (2, 2, 32, 32, 3) and out.reconstructions.shape == (2, 32, 32, 3)
    assert len(variants) == 2
    for i in range(2):
        edited = editor.edit(codes[i : i + 1], variants)[0]
        assert torch.equal(torch.from_numpy(out.codes[i]), edited)
        assert np.array_equal(out.images[i], editor.synthesize(edited))
        assert np.array_equal(out.reconstructions[i], editor.synthesize(codes[i : i + 1])[0])
