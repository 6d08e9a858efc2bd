"""A second command on the same photo into the same folder: the files that depend only on the photo and its
alignment (NAME_aligned.png, NAME.align.json) are reused when they match and refused when they differ; and
`edit FOLDER/` of an `invert` folder edits its latents."""

import json

import numpy as np
import pytest
from helpers import invoke, records
from PIL import Image
from skimage import data


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_invert_then_edit_twice_reuse_the_crop_and_sidecar(tmp_path, tiny_checkpoint, photo):
    out = tmp_path / "out"
    first = invoke("invert", photo, "--checkpoint", tiny_checkpoint, "-o", out)
    assert first.exit_code == 0, first.output
    crop, side = out / "photo_aligned.png", out / "photo.align.json"
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (crop, side)}
    for direction in ("sefa:0", "sefa:1"):
        result = invoke("edit", photo, "-d", direction, "--checkpoint", tiny_checkpoint, "-o", out, "--json")
        assert result.exit_code == 0, result.output
        (rec,) = records(result)
        assert rec["outputs"]["face0.aligned"] == str(crop) and rec["outputs"]["face0.alignment"] == str(side)
        assert "exists" not in result.stderr and rec["notes"] == []  # reused silently
    # neither rewritten nor replaced
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (crop, side)} == before
    # the same edit again: its own output exists, that one is refused
    again = invoke("edit", photo, "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert again.exit_code == 1 and "photo_sefa-0" in records(again)[0]["error"]
    # --overwrite rewrites the shared files too (new files: other inodes)
    assert invoke("edit", photo, "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o", out,
                  "--overwrite").exit_code == 0
    assert crop.stat().st_ino != before[crop][0] and side.stat().st_ino != before[side][0]
    assert crop.read_bytes() == before[crop][2]


def test_a_shared_file_that_differs_is_refused(tmp_path, tiny_checkpoint, photo):
    out = tmp_path / "out"
    assert invoke("align", photo, "-o", out).exit_code == 0
    assert invoke("align", photo, "-o", out).exit_code == 0  # the same crop and alignment: nothing to do
    side = out / "photo.align.json"
    meta = json.loads(side.read_text())
    meta["faces_found"], meta["source"] = 7, "elsewhere/photo.png"  # fields that vary by run do not count
    side.write_text(json.dumps(meta))
    assert invoke("edit", photo, "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o", out).exit_code == 0
    meta["quad"][0][0] += 1  # another alignment
    side.write_text(json.dumps(meta))
    result = invoke("edit", photo, "-d", "sefa:1", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 1 and records(result)[0]["error"].startswith(f"{side}: exists")
    assert not (out / "photo_sefa-1+3.png").exists() and json.loads(side.read_text()) == meta
    # another crop under the same name
    crop = out / "photo_aligned.png"
    pixels = np.asarray(Image.open(crop)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(crop)
    meta["quad"][0][0] -= 1
    side.write_text(json.dumps(meta))
    result = invoke("edit", photo, "-d", "sefa:1", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 1 and records(result)[0]["error"].startswith(f"{crop}: exists")


def test_a_failed_input_never_removes_a_reused_file(tmp_path, tiny_checkpoint, photo, monkeypatch):
    from stylecli.batch.jobs import EditJob

    out = tmp_path / "out"
    assert invoke("align", photo, "-o", out).exit_code == 0

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EditJob, "write_unit", disk_full)
    result = invoke("edit", photo, "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    assert result.exit_code == 1 and "could not write" in records(result)[0]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["photo.align.json", "photo_aligned.png"]


def test_a_skipped_input_lists_its_outputs(tmp_path, tiny_checkpoint, photo):
    out = tmp_path / "out"
    args = ("invert", photo, "--checkpoint", tiny_checkpoint, "-o", out, "--json")
    done = records(invoke(*args))[0]
    skipped = records(invoke(*args, "--skip-existing"))[0]
    assert skipped["status"] == "skipped" and skipped["outputs"] == done["outputs"]
    assert set(done["outputs"]) == {"face0.latent", "face0.image", "face0.aligned", "face0.alignment"}


def test_edit_of_an_invert_folder_edits_its_latents(tmp_path, tiny_checkpoint, photo, face_png):
    inv = tmp_path / "inv"
    assert invoke("invert", photo, "--checkpoint", tiny_checkpoint, "-o", inv).exit_code == 0
    assert invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", inv).exit_code == 0
    assert sorted(p.name for p in inv.iterdir()) == ["face.npy", "face_inversion.png", "photo.align.json",
                                                     "photo.npy", "photo_aligned.png", "photo_inversion.png"]
    (inv / "photo_step1.png").write_bytes(face_png.read_bytes())  # as --save-steps names a pass
    (inv / "other.png").write_bytes(face_png.read_bytes())  # a photo with no latent: still an input
    (inv / "other_aligned.png").write_bytes(face_png.read_bytes())  # no other.npy: an input too
    out = tmp_path / "out"
    result = invoke("edit", str(inv) + "/", "-d", "sefa:0", "--no-align", "--checkpoint", tiny_checkpoint,
                    "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert [r["input"] for r in records(result)] == [str(inv / n) for n in ("face.npy", "other.png",
                                                                            "other_aligned.png", "photo.npy")]
    assert sorted(p.name for p in out.iterdir()) == ["face_sefa-0+3.png", "other_aligned_sefa-0+3.png",
                                                     "other_sefa-0+3.png", "photo_sefa-0+3.png"]
    notes = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(notes) == 1 and "4 images made from a .npy latent" in notes[0]
    # invert and align still take a folder's images only
    again = invoke("align", inv, "-o", tmp_path / "al", "--json")
    assert {r["input"] for r in records(again)} >= {str(inv / "photo_aligned.png"), str(inv / "other.png")}


def test_a_direction_file_is_not_a_latent(tmp_path, tiny_checkpoint):
    folder = tmp_path / "dirs"
    folder.mkdir()
    np.save(folder / "glasses.npy", np.ones((1, 32), np.float32))
    np.save(folder / "flat.npy", np.ones(32, np.float32))
    result = invoke("edit", folder, "-d", "sefa:0", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o", "--json")
    assert result.exit_code == 1
    for rec, shape in zip(records(result), ("[32]", "[1, 32]")):
        assert f"a direction's shape {shape}, not a latent" in rec["error"] and "--direction" in rec["error"]
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 2  # one line each
