"""Starting the editor: load the model once, find the sliders, launch the page on a local address."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from stylecli.serve.session import EditorSession, Limits

if TYPE_CHECKING:
    from stylecli.tuning import TuningConfig


def prepare(checkpoint: Path | Sequence[Path] | None = None, model: str | Sequence[str] | None = None,
            device: str = "auto", directions_dir: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
            note: Callable[[str], None] = print, tuning: TuningConfig | None = None,
            limits: Limits | None = None) -> EditorSession:
    """The models, their sliders, the encoder choices and a private working folder; StyleCliError when a model
    cannot load or does not fit the first.

    Checkpoints, then registry models (e4e_ffhq when neither is given), each loaded once: the first gives the
    sliders; each adds its own encoder to the page's choice. tuning: the settings of the page's pivotal tuning
    (default: TUNE_STEPS steps, PTI's other values); offered for every model `--tune` accepts when the lpips
    package is installed. limits: sessions, their time-out, the upload size (default: Limits())."""
    from stylecli.serve.backend import Backend
    from stylecli.serve.encoders import choices
    from stylecli.serve.sliders import discover

    sources = models_of(checkpoint, model)
    backends = [Backend.load(path, name or DEFAULT_MODEL, device, max_pixels) for path, name in sources]
    for other in backends[1:]:
        check_fits(backends[0], other)
    directions = discover(backends[0], directions_dir, note)
    note(f"{len(directions)} sliders: " + ", ".join(d.slider.spec for d in directions))
    encoders = choices(backends, page_tuner(tuning, note) if any(b.tunable for b in backends) else None)
    if len(encoders) > 1:
        note("encoders: " + ", ".join(c.key for c in encoders))
    return EditorSession(backends[0], directions, Path(tempfile.mkdtemp(prefix="stylecli-serve-")),
                         encoders=encoders, limits=limits)


def models_of(checkpoint: Path | Sequence[Path] | None, model: str | Sequence[str] | None
              ) -> list[tuple[Path | None, str | None]]:
    """(checkpoint, registry name) of each model: checkpoints first, then registry models; e4e_ffhq when none is
    given. The same model twice is a UsageError."""
    from stylecli.errors import UsageError

    paths = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint or [])
    names = [model] if isinstance(model, str) else list(model or [])
    given = [str(p) for p in paths] + names
    same = [str(Path(p).resolve()) for p in paths] + names  # tiny.pt and ./tiny.pt are one file
    twice = next((given[i] for i, g in enumerate(same) if g in same[:i]), None)
    if twice is not None:
        raise UsageError(f"{twice}: given twice; name each model once")
    out: list[tuple[Path | None, str | None]] = [(Path(p), None) for p in paths] + [(None, n) for n in names]
    return out or [(None, DEFAULT_MODEL)]


def check_fits(first, other) -> None:
    """Every model of one page takes the same codes (styles, width, domain): the sliders are the first's."""
    from stylecli.errors import UsageError

    if (other.n_styles, other.style_dim) != (first.n_styles, first.style_dim) or (
            first.domain and other.domain and first.domain != other.domain):
        raise UsageError(f"{other.name}: takes [{other.n_styles}, {other.style_dim}] codes of "
                         f"{other.domain or 'an unknown domain'}, but {first.name} takes [{first.n_styles}, "
                         f"{first.style_dim}] of {first.domain or 'an unknown domain'}: serve models of one "
                         "generator together")


def page_tuner(config: TuningConfig | None, note: Callable[[str], None]):
    """The Tuner of the page's tuning choices (TUNE_STEPS steps unless `config` says), or None without the lpips
    package (noted). Its LPIPS network loads on the first tuning."""
    import importlib.util

    from stylecli.serve.encoders import TUNE_STEPS
    from stylecli.tuning import TuningConfig
    from stylecli.tuning.stage import Tuner

    if importlib.util.find_spec("lpips") is None:
        note("tuning left out: it needs the lpips package: pip install 'stylecli[eval]'")
        return None
    return Tuner(config or TuningConfig(steps=TUNE_STEPS))


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_requirements(directions: Path | None) -> None:
    """What the editor needs before anything loads: Gradio and dlib installed, --directions a folder."""
    import importlib.util

    from stylecli.errors import UsageError

    if importlib.util.find_spec("gradio") is None:
        raise UsageError("the browser editor needs Gradio: pip install 'stylecli[ui]'")
    if importlib.util.find_spec("dlib") is None:
        raise UsageError("the browser editor finds faces with dlib: pip install 'stylecli[ui]'")
    if directions is not None and not directions.is_dir():
        raise UsageError(f"--directions {directions}: not a folder")


def exposure_warnings(host: str, share: bool) -> list[str]:
    """What to tell the user when the editor is reachable beyond this machine."""
    warnings = []
    if host not in LOCAL_HOSTS:
        warnings.append(f"listening on {host}: anyone who can reach this machine on that network can use the "
                        "editor (and this machine's compute)")
    if share:
        warnings.append("--share makes a public link: anyone with it can use the editor")
    return warnings


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
    """Serve the page until interrupted (Ctrl-C or SIGTERM: the working folder, Gradio's copies of the uploads
    and outputs included, is removed); block=False: return the running app, for tests and scripts."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no telemetry, no version check
    # Gradio keeps uploads and what it serves in its own temporary folder: put it in ours, which close() removes.
    os.environ["GRADIO_TEMP_DIR"] = str(session.workdir / "gradio")
    from stylecli.errors import UsageError
    from stylecli.serve.app import CSS, build_app

    demo = build_app(session, share=share)
    demo.queue(default_concurrency_limit=1)
    if block:
        stop_on_sigterm()
    try:
        demo.launch(server_name=host, server_port=port, share=share, inbrowser=open_browser,
                    prevent_thread_lock=True, allowed_paths=[str(session.workdir)],
                    max_file_size=session.limits.max_upload_bytes, css=CSS,
                    quiet=True, ssr_mode=False)
    except OSError as exc:
        session.close()
        raise UsageError(f"--port {port}: the page could not start on {host}:{port} ({exc}); pick another port, "
                         f"e.g. --port {port + 1}") from None
    except BaseException:
        session.close()
        raise
    print(f"stylecli: the editor is at {demo.local_url}" + (f" and {demo.share_url}" if demo.share_url else ""),
          file=sys.stderr, flush=True)
    if block:
        try:
            demo.block_thread()  # until Ctrl-C or SIGTERM
        finally:
            demo.close()
            session.close()
    return demo


def stop_on_sigterm() -> None:
    """SIGTERM (kill, systemd, docker stop) ends the server as Ctrl-C does, so its files are removed."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
