"""Each edit kind against an independent computation of its formula, on real-format files built here."""

import numpy as np
import pytest
import torch
from conftest import tiny_model
from helpers import official_ganspace, real_format_pca

from stylecli.editing import apply_edits, parse_layers, resolve_edit
from stylecli.editing.base import EditError
from stylecli.editing.ganspace import NAMED_EDITS, ganspace_edit, load_pca
from stylecli.editing.interfacegan import DirectionEdit, load_direction
from stylecli.editing.mixing import mix
from stylecli.editing.sefa import modulation_weights, sefa_directions


def test_interfacegan_adds_the_direction_to_every_layer(tmp_path):
    d = torch.randn(1, 512)
    torch.save(d, tmp_path / "age.pt")
    edit = resolve_edit("age", 18, resolve_file=lambda name: tmp_path / f"{name}.pt")
    codes = torch.randn(2, 18, 512)
    out = edit.apply(codes, 2.5)
    np.testing.assert_allclose(out.numpy(), codes.numpy() + 2.5 * d.numpy()[None], atol=1e-6)
    assert torch.equal(edit.apply(codes, 0.0), codes)  # strength 0: the code itself
    torch.testing.assert_close(edit.apply(edit.apply(codes, 3.0), -3.0), codes)


def test_pose_direction_is_per_layer_and_shapes_are_checked(tmp_path):
    pose = torch.randn(1, 18, 512)
    torch.save(pose, tmp_path / "pose.pt")
    edit = resolve_edit("pose", 18, resolve_file=lambda name: tmp_path / f"{name}.pt")
    codes = torch.randn(1, 18, 512)
    torch.testing.assert_close(edit.apply(codes, -1.5), codes - 1.5 * pose)
    with pytest.raises(EditError, match=r"does not fit a model with 16 style layers"):
        edit.apply(torch.randn(1, 16, 512), 1.0)


def test_layers_restrict_a_direction(tmp_path):
    np.save(tmp_path / "mine.npy", np.ones(512, np.float32))
    edit = resolve_edit(str(tmp_path / "mine.npy"), 18, layers=parse_layers("0-3,8", 18))
    delta = edit.apply(torch.zeros(1, 18, 512), 2.0)[0, :, 0]
    assert delta.tolist() == [2, 2, 2, 2, 0, 0, 0, 0, 2] + [0] * 9


def test_user_direction_file_shapes(tmp_path):
    for shape in ([512], [1, 512], [18, 512], [1, 18, 512]):
        np.save(tmp_path / "d.npy", np.zeros(shape, np.float32))
        assert load_direction(tmp_path / "d.npy").shape[-1] == 512
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(EditError, match="expected"):
        load_direction(tmp_path / "bad.npy")
    with pytest.raises(EditError, match="no such direction file"):
        resolve_edit(str(tmp_path / "missing.pt"), 18)


@pytest.mark.parametrize("name", list(NAMED_EDITS["ffhq_pca"]))
def test_ganspace_named_edits_match_the_published_formula(tmp_path, name):
    pca = real_format_pca(tmp_path / "ffhq_pca.pt")
    edit = resolve_edit(f"ganspace:{name}", 18, resolve_file=lambda n: tmp_path / f"{n}.pt")
    codes = torch.randn(3, 18, 512)
    idx, start, end, strength = NAMED_EDITS["ffhq_pca"][name]
    for s in (None, 7.0):
        out = edit.apply(codes, s)
        for b in range(3):
            ref = official_ganspace(codes[b].numpy(), pca, idx, start, end, strength if s is None else s)
            np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-4)


def test_ganspace_strength_is_the_target_coordinate(tmp_path):
    pca = load_pca(real_format_pca(tmp_path / "p.pt") and tmp_path / "p.pt")
    edit = ganspace_edit(pca, 5, (0, 1, 2), 0.0, "g")
    out = edit.apply(torch.randn(2, 18, 512), 4.0)
    torch.testing.assert_close(edit.coordinate(out), torch.tensor([4.0, 4.0]), atol=1e-4, rtol=0)
    with pytest.raises(EditError, match="needs --layers"):
        resolve_edit("ganspace:5", 18, resolve_file=lambda n: tmp_path / "p.pt")
    with pytest.raises(EditError, match="component 99"):
        ganspace_edit(pca, 99, None, 0.0, "g")


def test_sefa_directions_are_orthonormal_eigenvectors():
    g = tiny_model().decoder
    layers = (0, 1, 2)
    dirs, values = sefa_directions(g, layers)
    assert np.allclose(dirs @ dirs.T, np.eye(dirs.shape[0]), atol=1e-8)
    a = modulation_weights(g, layers)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    m = a.T @ a
    for k in range(3):
        np.testing.assert_allclose(m @ dirs[k], values[k] * dirs[k], atol=1e-8)
    assert np.all(np.diff(values) <= 1e-12)  # strongest first
    again, _ = sefa_directions(g, layers)  # from the cache
    np.testing.assert_array_equal(again, dirs)
    edit = resolve_edit("sefa:1", g.n_latent, g, layers)
    codes = torch.randn(2, g.n_latent, 32)
    out = edit.apply(codes, 5.0)
    assert torch.equal(out[:, 3:], codes[:, 3:])
    torch.testing.assert_close(edit.apply(out, -5.0), codes)
    assert torch.equal(edit.apply(codes, 0.0), codes)


def test_mixing_takes_the_chosen_layers():
    a, b = torch.randn(1, 18, 512), torch.randn(1, 18, 512)
    out = mix(a, b, (8, 9), 1.0)
    assert torch.equal(out[:, 8:10], b[:, 8:10]) and torch.equal(out[:, :8], a[:, :8])
    half = mix(a, b, None, 0.25)
    torch.testing.assert_close(half, 0.25 * b + 0.75 * a)


def test_several_edits_apply_in_turn(tmp_path):
    d1, d2 = torch.randn(1, 512), torch.randn(18, 512)
    e1 = DirectionEdit(label="a", direction=d1)
    e2 = DirectionEdit(label="b", direction=d2)
    codes = torch.randn(1, 18, 512)
    torch.testing.assert_close(apply_edits(codes, [(e1, 2.0), (e2, -1.0)]), codes + 2 * d1 - d2)


def test_unknown_names_and_layer_specs():
    with pytest.raises(EditError, match="did you mean age"):
        resolve_edit("agee", 18)
    with pytest.raises(EditError, match="did you mean ganspace:white_hair"):
        resolve_edit("ganspace:white_hiar", 18)
    with pytest.raises(EditError, match="14 style layers"):
        resolve_edit("ganspace:smile", 14)
    assert parse_layers("all") is None and parse_layers("2-4") == (2, 3, 4)
    for bad in ("5-2", "x", "0-40"):
        with pytest.raises(EditError):
            parse_layers(bad, 18)
