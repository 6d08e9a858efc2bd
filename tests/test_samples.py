"""Sample photos shipped in the package: `sample:NAME` wherever an input path goes, no download."""

import json
from pathlib import Path

import pytest
from helpers import invoke, records

from stylecli.faces.sidecar import sidecar_photo
from stylecli.samples import FOLDER, SAMPLES, resolve_sample


def test_samples_are_small_files_with_their_license_recorded():
    readme = (FOLDER / "README.txt").read_text()
    for name, (file, license) in SAMPLES.items():
        path = resolve_sample(f"sample:{name}")
        assert path == FOLDER / file and path.stem == name
        assert 0 < path.stat().st_size < 200_000
        assert file in readme and "public domain" in license
    assert resolve_sample("photo.jpg") == Path("photo.jpg")


def test_align_a_sample_at_once_and_its_sidecar_finds_it_from_anywhere(tmp_path):
    pytest.importorskip("dlib")
    result = invoke("align", "sample:astronaut", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    (record,) = records(result)
    assert record["ok"] and Path(record["input"]) == FOLDER / "astronaut.jpg"
    sidecar = tmp_path / "out" / "astronaut.align.json"
    assert (tmp_path / "out" / "astronaut_aligned.png").is_file()
    data = json.loads(sidecar.read_text())
    assert data["sample"] == "astronaut"
    moved = tmp_path / "elsewhere" / "deeper" / "astronaut.align.json"  # relative path no longer leads there
    moved.parent.mkdir(parents=True)
    data.update(source="../gone/astronaut.jpg", source_absolute=str(tmp_path / "gone" / "astronaut.jpg"))
    moved.write_text(json.dumps(data))
    assert sidecar_photo(moved, data) == FOLDER / "astronaut.jpg"


def test_an_unknown_sample_is_a_usage_error_listing_the_names(tmp_path):
    result = invoke("align", "sample:nope", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "sample:nope" in result.stderr and "sample:astronaut" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_photo_sidecar_names_no_sample(tmp_path, face_png):
    pytest.importorskip("dlib")
    result = invoke("align", face_png, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "sample" not in json.loads((tmp_path / "out" / "face.align.json").read_text())


def test_edit_a_sample_with_paste_back_and_later_its_latent(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    out = tmp_path / "out"
    result = invoke("edit", "sample:astronaut", "--checkpoint", tiny_checkpoint, "--direction", "sefa:0",
                    "--strength", "3", "--paste-back", "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert (out / "astronaut_sefa-0+3_pasted.png").is_file()
    inverted = invoke("invert", "sample:astronaut", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "inv")
    assert inverted.exit_code == 0, inverted.stderr
    again = invoke("edit", tmp_path / "inv" / "astronaut.npy", "--checkpoint", tiny_checkpoint, "--direction",
                   "sefa:0", "--strength", "3", "--paste-back", "-o", tmp_path / "again", "--json")
    assert again.exit_code == 0, again.stderr  # the sidecar found the packaged photo
    (record,) = records(again)
    assert (tmp_path / "again" / "astronaut_sefa-0+3_pasted.png").is_file(), record


def test_mix_takes_samples(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    result = invoke("mix", "sample:astronaut", "sample:astronaut", "--checkpoint", tiny_checkpoint, "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert list(tmp_path.glob("astronaut+astronaut_*.png")), sorted(p.name for p in tmp_path.iterdir())
    assert invoke("mix", "sample:x", "sample:astronaut", "--checkpoint", tiny_checkpoint).exit_code == 2
