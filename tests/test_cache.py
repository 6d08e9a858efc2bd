"""The converted-copy cache: one copy per source file, an imported file stored once, and `cache clean` that lists
and asks before it deletes."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time

import torch
from conftest import tiny_config, tiny_model
from helpers import invoke, records, write_registry

from stylecli.cli import cache_cmd
from stylecli.encoders.formats.e4e import default_opts, save_checkpoint
from stylecli.encoders.kinds import checkpoint_kind
from stylecli.encoders.loader import converted_path, current_copy, load_model
from stylecli.registry.cache import cache_dir, converted_copies


def save_version(path, seed: int, mtime: int) -> None:
    """A checkpoint at `path` of weights `seed`, with a given mtime (two versions of one size differ by it)."""
    save_checkpoint(tiny_model(seed=seed), path, default_opts(tiny_config()))
    os.utime(path, (mtime, mtime))


def test_a_changed_checkpoint_at_the_same_path_leaves_one_copy_the_new_one(tmp_path):
    latest = tmp_path / "latest.pt"
    save_version(latest, seed=1, mtime=1_700_000_000)
    assert not load_model(latest).from_cache and load_model(latest).from_cache
    save_version(latest, seed=2, mtime=1_700_000_100)  # the next save of a training run: same path, same size
    assert current_copy(latest) is None  # the copy of the first version is stale
    rebuilt = load_model(latest)
    assert not rebuilt.from_cache and rebuilt.converted == converted_path(latest)
    rows = converted_copies()
    assert [r["path"] for r in rows] == [str(converted_path(latest))]
    assert [r["source"] for r in records(invoke("cache", "list", "--json"))] == [str(latest.resolve())]
    used = load_model(latest)  # and the new copy is the one used
    assert used.from_cache
    assert torch.equal(used.model.decoder.input.input, tiny_model(seed=2).decoder.input.input)
    assert not torch.equal(used.model.decoder.input.input, tiny_model(seed=1).decoder.input.input)


def test_a_copy_named_by_an_earlier_version_is_replaced_and_a_stale_copy_is_no_e4e_proof(tmp_path):
    path = tmp_path / "m.pt"
    save_version(path, seed=1, mtime=1_700_000_000)
    load_model(path)
    old_name = cache_dir() / "converted" / ("0" * 32 + ".safetensors")  # keyed by path, size and mtime before
    shutil.copyfile(converted_path(path), old_name)
    assert len(converted_copies()) == 2
    save_version(path, seed=3, mtime=1_700_000_200)
    assert checkpoint_kind(path)[1] is not None  # a stale copy does not stand for the file: it is read
    load_model(path)
    assert [r["path"] for r in converted_copies()] == [str(converted_path(path))]


def test_two_loads_converting_at_once_leave_one_whole_copy(tmp_path):
    path = tmp_path / "m.pt"
    save_version(path, seed=4, mtime=1_700_000_000)
    errors: list[BaseException] = []

    def load():
        try:
            load_model(path)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r["path"] for r in converted_copies()] == [str(converted_path(path))]
    assert not list((cache_dir() / "converted").glob("*.part"))
    again = load_model(path)
    assert again.from_cache and torch.equal(again.model.decoder.input.input, tiny_model(seed=4).decoder.input.input)


def test_an_imported_checkpoint_is_stored_once(tmp_path, monkeypatch, tiny_checkpoint, face_png):
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    write_registry(tmp_path, monkeypatch, f'[mine]\nwhat = "t"\nkind = "checkpoint"\nfile = "mine.pt"\n'
                   f'sha256 = "{sha}"\nlicense = "t"\nsources = [{{ manual = "https://example.invalid" }}]\n')
    assert invoke("weights", "import", "mine", tiny_checkpoint).exit_code == 0
    for out in ("a", "b"):
        result = invoke("invert", face_png, "--no-align", "--model", "mine", "--latent-only", "-o", tmp_path / out)
        assert result.exit_code == 0, result.stderr
        assert "fast-loading copy" not in result.stderr
    stored = [p for p in cache_dir().rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert stored == [cache_dir() / "weights" / "mine" / "mine.pt"]
    assert records(invoke("cache", "list", "--json")) == []
    # the same file given by its path outside the cache still gets its fast-loading copy
    assert invoke("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "--latent-only",
                  "-o", tmp_path / "c").exit_code == 0
    assert len(records(invoke("cache", "list", "--json"))) == 1


def one_copy(tiny_checkpoint):
    load_model(tiny_checkpoint)
    (copy,) = (r["path"] for r in converted_copies())
    return copy


def test_clean_dry_run_lists_and_deletes_nothing(tiny_checkpoint):
    copy = one_copy(tiny_checkpoint)
    result = invoke("cache", "clean", "--dry-run")
    assert result.exit_code == 0 and os.path.isfile(copy)
    assert copy in result.stderr and "MB" in result.stderr and "would remove 1 converted copy" in result.stderr
    assert result.stdout == ""


def test_clean_without_a_terminal_or_yes_refuses(tiny_checkpoint):
    copy = one_copy(tiny_checkpoint)
    result = invoke("cache", "clean")
    assert result.exit_code == 2 and os.path.isfile(copy)
    assert len(result.stderr.splitlines()) == 1 and "--yes" in result.stderr and "--dry-run" in result.stderr
    yes = invoke("cache", "clean", "--yes")
    assert yes.exit_code == 0 and not os.path.exists(copy) and "removed 1 converted copy" in yes.stderr
    assert converted_copies() == []


def test_clean_on_a_terminal_asks(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(cache_cmd, "_interactive", lambda: True)
    copy = one_copy(tiny_checkpoint)
    kept = invoke("cache", "clean", input="n\n")
    assert kept.exit_code == 0 and os.path.isfile(copy) and "nothing was removed" in kept.stderr
    assert copy in kept.stderr and "remove 1 converted copy" in kept.stderr
    default = invoke("cache", "clean", input="\n")  # the default answer is no
    assert default.exit_code == 0 and os.path.isfile(copy)
    removed = invoke("cache", "clean", input="y\n")
    assert removed.exit_code == 0 and not os.path.exists(copy) and "removed 1 converted copy" in removed.stderr
    assert "nothing to remove" in invoke("cache", "clean", input="y\n").stderr


def test_clean_removes_copies_left_unfinished_by_a_killed_process(tiny_checkpoint):
    folder = cache_dir() / "converted"
    folder.mkdir(parents=True)
    left = folder / ".abc.safetensors.x1y2.part"
    left.write_bytes(b"half a copy")
    writing = folder / ".def.safetensors.z3.part"  # being written now: not touched
    writing.write_bytes(b"in progress")
    hours_ago = time.time() - 7200
    os.utime(left, (hours_ago, hours_ago))
    assert [r["source"] for r in converted_copies()] == ["(unfinished copy)"]
    assert invoke("cache", "clean", "--yes").exit_code == 0
    assert not left.exists() and writing.exists()
