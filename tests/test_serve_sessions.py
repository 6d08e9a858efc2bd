"""`stylecli serve` with several people at once: each browser session has files of its own, which exist as long as
they can be served; work is shared; idle sessions make room; a full server says "busy"; uploads have a size cap.

The session layer is called the way the page's handlers call it (stylecli.serve.app._render): one `visit` per
request, then open, invert and render for that session id.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_serve import files, loaded, server, two_astronauts  # noqa: F401 - the tiny models and the photo, as fixtures

from stylecli.errors import InputError
from stylecli.serve.session import EditorSession, Limits, SessionNotice

CLIENTS, EDITS = 8, 5


def new_session(loaded, work: Path, **limits) -> EditorSession:  # noqa: F811
    """A server's session over the module's loaded models, with its own caches, folder and limits."""
    base, _ = loaded
    return EditorSession(base.backend, base.directions, work, encoders=base.encoders, limits=Limits(**limits))


@pytest.fixture(scope="module")
def photos(files, tmp_path_factory):  # noqa: F811
    """Three different photos: the two astronauts, mirrored, and one astronaut alone."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    mirrored = root / "mirrored.png"
    Image.open(files["photo"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    alone = root / "alone.png"
    Image.fromarray(data.astronaut()).resize((320, 320)).save(alone)
    return [files["photo"], mirrored, alone]


def call(session: EditorSession, client: str, photo: Path, edit: int, fresh: bool = False):
    """One request, as the page's handlers make it: an edit per `edit` number (face, sliders, paste-back, saved or
    a preview); returns the result and the session's own folder."""
    face = edit % 2 if "alone" not in photo.name else 0
    values = {"sefa_0": float(edit - 2), "file_turn": 0.5 * edit}
    with session.visit(client, fresh) as visitor:
        upload = session.open(photo)
        inverted = session.invert(upload, face)
        out = session.render(inverted, values, paste_back=edit != 3, save=edit % 2 == 0, client=client)
    return out, visitor.folder


def seen(out, folder: Path) -> dict:
    """What the client gets, read at once (as a client downloads): each file's basename and content; and checks
    that each exists and is this session's own."""
    got = {}
    for role, path in [("before", out.before), ("after", out.after), *(("file", p) for p in out.files)]:
        assert path.is_file(), f"{path} returned but not there"
        assert path.is_relative_to(folder), f"{path} is not in the session's folder {folder}"
        data = np.load(path) if path.suffix == ".npy" else path.read_bytes()
        got[(role, path.name)] = data
    return {"command": out.command, "image": out.image, "files": got}


def same(a: dict, b: dict) -> bool:
    if a["command"] != b["command"] or a["files"].keys() != b["files"].keys():
        return False
    if not np.array_equal(a["image"], b["image"]):
        return False
    for key, data in a["files"].items():
        other = b["files"][key]
        if isinstance(data, np.ndarray):
            if not np.array_equal(data, other):
                return False
        elif key[1].endswith((".png", ".jpg")):
            if not np.array_equal(np.asarray(Image.open(_bytes(data))), np.asarray(Image.open(_bytes(other)))):
                return False
        elif data != other:
            return False
    return True


def _bytes(data: bytes):
    import io

    return io.BytesIO(data)


def test_eight_sessions_at_once_each_get_their_own_files_and_the_results_made_alone(loaded, photos, tmp_path):  # noqa: F811
    alone = {}
    for i, photo in enumerate(photos):  # each call made alone: a server of its own, one session
        for edit in range(EDITS):
            single = new_session(loaded, tmp_path / f"alone{i}-{edit}")
            alone[(i, edit)] = seen(*call(single, "alone", photo, edit, fresh=True))
            single.close()

    session = new_session(loaded, tmp_path / "work")
    results: dict[tuple[int, int], dict] = {}
    folders: dict[int, set[Path]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(k: int) -> None:
        try:
            start.wait()
            for edit in range(EDITS):
                out, folder = call(session, f"client{k}", photos[k % len(photos)], edit, fresh=edit == 0)
                results[(k, edit)] = seen(out, folder)
                folders.setdefault(k, set()).add(folder)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == CLIENTS * EDITS
    for (k, edit), got in results.items():
        assert same(got, alone[(k % len(photos), edit)]), (k, edit)
    assert all(len(f) == 1 for f in folders.values())  # one folder per session, none shared
    assert len({next(iter(f)) for f in folders.values()}) == CLIENTS
    assert len(session.sessions) == CLIENTS
    # Work is shared: each photo was read once, though 8 sessions opened 3 photos.
    assert len(session._work) == len(photos)
    session.close()


def test_an_idle_session_makes_room_and_is_told_to_upload_again(loaded, photos, tmp_path):  # noqa: F811
    from stylecli.serve.app import _render

    session = new_session(loaded, tmp_path / "work", max_sessions=2, active_seconds=0)
    out_a, folder_a = call(session, "a", photos[0], 0, fresh=True)
    call(session, "b", photos[1], 0, fresh=True)
    time.sleep(0.01)
    call(session, "c", photos[0], 1, fresh=True)  # the oldest idle one, a, goes with its files
    assert not folder_a.exists() and not out_a.after.exists() and session.sessions == ["b", "c"]
    with pytest.raises(SessionNotice, match="^[^\n]*upload the photo again$"):
        call(session, "a", photos[0], 1)
    assert call(session, "a", photos[0], 1)[0].after.is_file()  # told once; then it edits again

    uploads = photos[1].parent  # (the page opens only what the web server received)
    time.sleep(0.01)
    call(session, "c", photos[0], 1)
    call(session, "a", photos[0], 1)  # b is now the oldest idle session
    status = _render(session, uploads, str(photos[1]), 0, {}, True, "feather", [], None, False, client="b")[0]
    assert status == f"**{session_gone()}**"
    # A new upload needs no telling: the page's upload handler starts the session again.
    call(session, "b", photos[0], 0)  # (told once, b comes back: the oldest idle session, c, makes room)
    status = _render(session, uploads, str(photos[1]), 0, {}, True, "feather", [], None, False, client="a",
                     fresh=True)[0]
    assert status.startswith("mirrored.png: 896x512"), status
    session.close()


def session_gone() -> str:
    from stylecli.serve.session import GONE

    return GONE


def test_idle_time_out_removes_a_sessions_files(loaded, photos, tmp_path):  # noqa: F811
    session = new_session(loaded, tmp_path / "work", session_timeout=0.05)
    _, folder = call(session, "a", photos[0], 0, fresh=True)
    assert folder.is_dir()
    time.sleep(0.1)
    call(session, "b", photos[0], 0, fresh=True)
    assert not folder.exists() and session.sessions == ["b"]
    with pytest.raises(SessionNotice, match="upload the photo again"):
        call(session, "a", photos[0], 0)
    session.close()


def test_a_full_server_says_busy_and_never_drops_an_active_session(loaded, photos, tmp_path):  # noqa: F811
    session = new_session(loaded, tmp_path / "work", max_sessions=2)  # used within a minute: active
    call(session, "a", photos[0], 0, fresh=True)
    call(session, "b", photos[1], 0, fresh=True)
    with pytest.raises(SessionNotice, match=r"^busy, try again in a moment \([^\n]*\)$"):
        call(session, "c", photos[0], 0, fresh=True)
    assert session.sessions == ["a", "b"]

    session = new_session(loaded, tmp_path / "work2", max_sessions=2, active_seconds=0)
    with session.visit("a", fresh=True):
        with session.visit("b", fresh=True), pytest.raises(SessionNotice, match="^busy, try again in a moment"):
            session.visit("c", fresh=True).__enter__()  # both in a request
        time.sleep(0.01)  # b is done first
    with session.visit("c", fresh=True):  # once both are done, the oldest idle one (b) makes room
        assert session.sessions == ["a", "c"]


def test_uploads_have_a_size_cap_in_bytes(loaded, photos, tmp_path):  # noqa: F811
    session = new_session(loaded, tmp_path / "work", max_upload_bytes=100_000)
    size = photos[0].stat().st_size
    assert size > 100_000
    with pytest.raises(InputError) as info:
        session.open(photos[0])
    assert str(info.value) == (f"astronauts.png: {size / 1e6:.1f} MB, over this server's upload limit of 0.1 MB "
                               "(`stylecli serve --max-upload-mb`)")


def test_serve_passes_its_limits(files, monkeypatch):  # noqa: F811
    from helpers import invoke

    import stylecli.serve.server as server  # noqa: F811 - the module, not the fixture

    given = []
    monkeypatch.setattr(server, "check_address", lambda host, port: None)
    monkeypatch.setattr(server, "prepare", lambda *args: given.append(args[-1]) or "session")
    monkeypatch.setattr(server, "launch", lambda *args, **kw: None)
    result = invoke("serve", "--checkpoint", files["checkpoint"], "--no-browser", "--max-sessions", "3",
                    "--session-timeout", "2.5", "--max-upload-mb", "20")
    assert result.exit_code == 0, result.stderr
    assert given == [Limits(max_sessions=3, session_timeout=150.0, max_upload_bytes=20_000_000)]
    assert invoke("serve", "--checkpoint", files["checkpoint"], "--no-browser").exit_code == 0
    assert given[-1] == Limits()


# -- the same through the real server and its client API ---------------------------------------------------------


def api_call(client, photo: Path, edit: int):
    """One `edit` API call as the README's example makes it (the photo uploaded with the call), varied by `edit`."""
    from gradio_client import handle_file

    face = edit % 2 if "alone" not in photo.name else 0
    return client.predict(photo=handle_file(str(photo)), face=face, paste=edit != 3, sefa_0=float(edit - 2),
                          file_turn=0.5 * edit, api_name="/edit")


def served(result, url: str) -> dict:
    """What a client gets from one call, downloaded at once: the status and command; each served file's role,
    basename and content (images as pixels); and the server folders they are served from."""
    import json
    import re
    import urllib.request

    status, aligned, recon, face, pair, command, downloads = result
    assert pair is not None and downloads, status
    outputs = [("aligned", aligned), ("recon", recon), ("face", face), ("before", pair[0]), ("after", pair[1]),
               *(("file", d) for d in downloads)]
    got, owners = {}, set()
    for role, data in outputs:
        path = data["path"] if isinstance(data, dict) else str(data)
        link = data.get("url") if isinstance(data, dict) else None
        link = link or f"{url}gradio_api/file={path}"
        with urllib.request.urlopen(link, timeout=30) as response:
            assert response.status == 200, (role, path)
            body = response.read()
        name = Path(path).name
        if name.endswith((".png", ".jpg", ".jpeg", ".webp")):
            body = pixels(body)
        elif name.endswith(".npy"):
            import io

            body = np.load(io.BytesIO(body))
        elif name.endswith(".json"):
            body = json.loads(body)
        got[(role, name if role in ("file",) else "")] = body
        owner = re.search(r"(stylecli-serve-[^/]+)/", path)  # Gradio serves its own copies, named by content
        owners.add(owner.group(1) if owner else None)
    return {"status": status, "command": command, "files": got, "owners": owners}


def pixels(data: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def same_served(a: dict, b: dict) -> bool:
    if a["command"] != b["command"] or a["files"].keys() != b["files"].keys():
        return False
    for key, data in a["files"].items():
        if isinstance(data, np.ndarray):
            if not np.array_equal(data, b["files"][key]):
                return False
        elif data != b["files"][key]:
            return False
    return True


@pytest.mark.slow
def test_eight_api_clients_at_once_through_the_server(server, photos):  # noqa: F811 - fixtures
    """8 gradio_client clients x 5 edits through the real server at once, mixing identical and different photos:
    every call succeeds, equals the same call made alone (pixels, command box, file basenames), and every file a
    client is handed has the content of its own call (no other client's photo or sliders)."""
    from gradio_client import Client

    url, log, *_ = server
    clients = [Client(url, verbose=False, download_files=False) for _ in range(CLIENTS)]
    alone = {}  # each call made alone, one at a time, by one client (the server takes 8 sessions: it is the 8th)
    for i, photo in enumerate(photos):
        for edit in range(EDITS):
            alone[(i, edit)] = served(api_call(clients[-1], photo, edit), url)

    results: dict[tuple[int, int], dict] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def run(k: int) -> None:
        try:
            start.wait(60)
            for edit in range(EDITS):
                results[(k, edit)] = served(api_call(clients[k], photos[k % len(photos)], edit), url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, (errors, log.read_text()[-3000:])
    assert len(results) == CLIENTS * EDITS
    for (k, edit), got in results.items():
        assert not got["status"].startswith("**"), got["status"]
        assert same_served(got, alone[(k % len(photos), edit)]), (k, edit)
    # Gradio serves copies of the session's files from its cache, named by content: a client's files are its own
    # when their content is that of its own call made alone (above); each photo's results differ from the others'.
    served_from = set().union(*(r["owners"] for r in [*results.values(), *alone.values()]))
    assert len(served_from) == 1 and None not in served_from, served_from
    for edit in range(EDITS):
        assert not same_served(alone[(0, edit)], alone[(1, edit)])
        assert not same_served(alone[(1, edit)], alone[(2, edit)])
