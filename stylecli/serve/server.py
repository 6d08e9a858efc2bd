"""Starting the editor: load the model once, find the sliders, launch the page on a local address."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from stylecli.images import DEFAULT_MAX_PIXELS
from stylecli.serve.session import EditorSession

MAX_UPLOAD = "200mb"


def prepare(checkpoint: Path | None = None, model: str = "e4e_ffhq", device: str = "auto",
            directions_dir: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
            note: Callable[[str], None] = print) -> EditorSession:
    """The model, its sliders and a private working folder; StyleCliError when the model cannot load."""
    from stylecli.serve.backend import Backend
    from stylecli.serve.sliders import discover

    backend = Backend.load(checkpoint, model, device, max_pixels)
    directions = discover(backend, directions_dir, note)
    note(f"{len(directions)} sliders: " + ", ".join(d.slider.spec for d in directions))
    return EditorSession(backend, directions, Path(tempfile.mkdtemp(prefix="stylecli-serve-")))


def check_address(host: str, port: int) -> None:
    """UsageError when the page could not listen on host:port (the port is taken, or the host is not this
    machine's): found before the model loads, not as a traceback after it."""
    import socket

    from stylecli.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"--host {host}: not an address of this machine ({exc.strerror or exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
                             f"port, e.g. --port {port + 1}") from None


def launch(session: EditorSession, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           open_browser: bool = True, block: bool = True):
    """Serve the page until interrupted (block=False: return the running app, for tests and scripts)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no telemetry, no version check
    from stylecli.errors import UsageError
    from stylecli.serve.app import CSS, build_app

    demo = build_app(session)
    demo.queue(default_concurrency_limit=1)
    try:
        demo.launch(server_name=host, server_port=port, share=share, inbrowser=open_browser,
                    prevent_thread_lock=True, allowed_paths=[str(session.workdir)], max_file_size=MAX_UPLOAD, css=CSS,
                    quiet=True, ssr_mode=False)
    except OSError as exc:
        session.close()
        raise UsageError(f"--port {port}: the page could not start on {host}:{port} ({exc}); pick another port, "
                         f"e.g. --port {port + 1}") from None
    print(f"stylecli: the editor is at {demo.local_url}" + (f" and {demo.share_url}" if demo.share_url else ""),
          file=sys.stderr, flush=True)
    if block:
        try:
            demo.block_thread()  # until Ctrl-C
        finally:
            demo.close()
            session.close()
    return demo
