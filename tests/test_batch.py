"""Batches from the shell: stdin, shards, resume after a kill, order, batching, progress."""

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shifted_faces
from helpers import invoke, records
from PIL import Image

from stylecli.batch.inputs import expand_inputs, shard_of, take_shard
from stylecli.batch.progress import Reporter
from stylecli.batch.runner import Summary


@pytest.fixture
def folder(tmp_path, face_png):
    """12 distinct aligned crops, and a corrupt file sorted into the middle."""
    d = shifted_faces(tmp_path / "shots", face_png, 12, 7, "img")
    (d / "img05b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return d


@pytest.mark.slow
def test_stdin_kill_then_resume_does_every_good_input_once(tmp_path, folder, tiny_checkpoint):
    out = tmp_path / "out"
    listing = "".join(f"{p}\n" for p in sorted(folder.iterdir()))
    cmd = [sys.executable, "-m", "stylecli", "invert", "-", "--no-align", "--checkpoint", str(tiny_checkpoint),
           "-o", str(out), "--json", "--batch-size", "1", "--skip-existing"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    proc.stdin.write(listing)
    proc.stdin.close()
    first = []
    for line in proc.stdout:
        first.append(json.loads(line))
        if len(first) == 3:
            proc.send_signal(signal.SIGTERM)
    first += [json.loads(line) for line in proc.stdout]
    stderr = proc.stderr.read()
    assert proc.wait() == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert 3 <= len(first) < 13
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary or partial files
    for rec in first:  # every reported input is complete
        if rec["ok"]:
            assert all(Path(p).is_file() for p in rec["outputs"].values())

    second = subprocess.run(cmd, input=listing, capture_output=True, text=True, env=env)
    assert second.returncode == 1, second.stderr  # the corrupt file
    recs = [json.loads(line) for line in second.stdout.splitlines()]
    assert [r["input"] for r in recs] == [str(p) for p in sorted(folder.iterdir())]  # input order
    done = [r["input"] for r in first + recs if r["status"] == "done"]
    good = [str(p) for p in sorted(folder.iterdir()) if p.name != "img05b.png"]
    assert sorted(done) == good  # each good input done exactly once over both runs
    assert {r["input"] for r in recs if r["status"] == "skipped"} == {r["input"] for r in first if r["ok"]}
    (bad,) = [r for r in recs if r["status"] == "failed"]
    assert bad["input"].endswith("img05b.png") and "img05b.png" in bad["error"]
    assert "skipped" in second.stderr and "failed 1" in second.stderr
    assert len(list(out.glob("*.npy"))) == 12


def test_batched_and_threaded_run_matches_one_by_one(tmp_path, folder, tiny_checkpoint):
    (folder / "img05b.png").unlink()
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = invoke("invert", folder, "--no-align", "--checkpoint", tiny_checkpoint, "-o", a, "--json",
                "--batch-size", "1", "--workers", "1")
    r2 = invoke("invert", folder, "--no-align", "--checkpoint", tiny_checkpoint, "-o", b, "--json",
                "--batch-size", "5", "--workers", "3")
    assert r1.exit_code == r2.exit_code == 0
    assert [r["input"] for r in records(r1)] == [r["input"] for r in records(r2)]
    for f in sorted(a.glob("*.npy")):
        np.testing.assert_allclose(np.load(f), np.load(b / f.name), atol=1e-5)


def test_null_separated_stdin_and_duplicates(tmp_path, folder):
    names = [str(folder / "img01.png"), str(folder / "img00.png"), str(folder / "img01.png")]
    paths = expand_inputs(["-"], stdin=io.StringIO("\0".join(names) + "\0"), null_separated=True)
    assert [p.name for p in paths] == ["img01.png", "img00.png"]
    weird = tmp_path / "a\nb.png"  # a newline in a name only survives NUL separation
    weird.write_bytes(b"")
    assert expand_inputs(["-"], stdin=io.StringIO(f"{weird}\0"), null_separated=True) == [weird]


def test_shards_partition_the_inputs_stably(folder):
    paths = expand_inputs([str(folder)])
    shards = [take_shard(paths, k, 3) for k in (1, 2, 3)]
    assert sorted(p for s in shards for p in s) == sorted(paths)
    assert sum(len(s) for s in shards) == len(paths)
    # A path's shard does not depend on the other inputs.
    assert take_shard(paths[:4], 2, 3) == [p for p in shards[1] if p in paths[:4]]
    assert all(shard_of(p, 3) == shard_of(Path(str(p)), 3) for p in paths)


def test_shard_option(tmp_path, folder, tiny_checkpoint):
    (folder / "img05b.png").unlink()
    outs = []
    for k in (1, 2):
        r = invoke("invert", folder, "--no-align", "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o",
                   "--json", "--shard", f"{k}/2")
        assert r.exit_code == 0
        outs += [rec["input"] for rec in records(r)]
    assert sorted(outs) == sorted(str(p) for p in folder.iterdir())
    assert invoke("invert", folder, "--no-align", "--shard", "3/2").exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = invoke("invert", empty, "--no-align", "--checkpoint", tiny_checkpoint, "--shard", "1/2")
    assert nothing.exit_code == 2 and f"no input images in {empty}" in nothing.stderr
    one = next(folder.iterdir())
    other = next(f"{k}/2" for k in (1, 2) if not take_shard([one], k, 2))
    idle = invoke("invert", one, "--no-align", "--checkpoint", tiny_checkpoint, "--shard", other, "-o", tmp_path / "i")
    assert idle.exit_code == 0 and "the 1 input falls in another shard; nothing" in idle.stderr


def test_skip_existing_with_every_face(tmp_path, tiny_checkpoint):
    pytest.importorskip("dlib")
    from skimage import data

    pair = tmp_path / "pair.png"
    astro = data.astronaut()
    Image.fromarray(np.hstack([astro, astro[:, ::-1]])).save(pair)
    args = ("align", pair, "--faces", "all", "-o", tmp_path / "o", "--json", "--skip-existing")
    assert records(invoke(*args))[0]["status"] == "done"
    assert records(invoke(*args))[0]["status"] == "skipped"
    (tmp_path / "o" / "pair_face1_aligned.png").unlink()
    assert records(invoke(*args))[0]["status"] == "done"  # a resume redoes the partial input


def test_skip_existing_redoes_an_empty_leftover(tmp_path, tiny_checkpoint, face_png):
    """A kill inside the no-hard-link publish can leave an empty output: a resume must redo it, not skip it."""
    out = tmp_path / "o"
    args = ("invert", face_png, "--no-align", "--checkpoint", tiny_checkpoint, "-o", out, "--json", "--skip-existing")
    assert records(invoke(*args))[0]["status"] == "done"
    assert records(invoke(*args))[0]["status"] == "skipped"
    (out / "face_inversion.png").write_bytes(b"")
    assert records(invoke(*args))[0]["status"] == "done"
    assert Image.open(out / "face_inversion.png").size[0] > 0


class FakeStream(io.StringIO):
    def isatty(self):
        return False


def test_plain_progress_lines_and_quiet():
    stream = FakeStream()
    rep = Reporter(10, stream=stream, interval=0)
    rep.update(Summary(total=10, done=4, failed=1, units=4, seconds=2.0, unit_name="faces"))
    rep.close(Summary(total=10, done=9, failed=1, units=9, seconds=4.0, unit_name="faces"))
    text = stream.getvalue()
    assert "5/10 (1 failed), 2.00 faces/s" in text and "done 9, skipped 0, failed 1 of 10" in text
    steps = FakeStream()
    rep = Reporter(100, stream=steps, interval=0, unit_name="steps")  # a driver names its own unit
    rep.update(Summary(total=100, done=30, units=30, seconds=10.0))
    rep.close(Summary(total=100, done=100, units=100, seconds=20.0))
    assert "3.00 steps/s" in steps.getvalue() and "(5.00 steps/s)" in steps.getvalue()
    assert "faces" not in steps.getvalue()
    quiet = FakeStream()
    rep = Reporter(10, quiet=True, stream=quiet, interval=0)
    rep.update(Summary(total=10, done=4))
    rep.close(Summary(total=10, done=10))
    assert quiet.getvalue() == ""
