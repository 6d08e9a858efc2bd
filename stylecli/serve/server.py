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


def launch(session: EditorSession, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           open_browser: bool = True, block: bool = True):
    """Serve the page until interrupted (block=False: return the running app, for tests and scripts)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no telemetry, no version check
    from stylecli.serve.app import CSS, build_app

    demo = build_app(session)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, share=share, inbrowser=open_browser, prevent_thread_lock=True,
                allowed_paths=[str(session.workdir)], max_file_size=MAX_UPLOAD, css=CSS, quiet=True, ssr_mode=False)
    print(f"stylecli: the editor is at {demo.local_url}" + (f" and {demo.share_url}" if demo.share_url else ""),
          file=sys.stderr, flush=True)
    if block:
        try:
            demo.block_thread()  # until Ctrl-C
        finally:
            demo.close()
            session.close()
    return demo
