"""serve: the browser editor, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli import app
from stylecli.cli.common import CheckpointOpt, Device, DeviceOpt, MaxPixelsOpt, ModelOpt, fail, handled

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    checkpoint: CheckpointOpt = None,
    model: ModelOpt = "e4e_ffhq",
    directions: Annotated[
        Path | None,
        typer.Option("--directions", help="A folder of your own direction files (.pt/.npy): one slider each."),
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 7860,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but 127.0.0.1 opens the editor to your "
                          "network.")
    ] = "127.0.0.1",
    share: Annotated[
        bool, typer.Option("--share", help="Also make a public link through Gradio's share servers.")
    ] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser tab.")] = False,
    device: DeviceOpt = Device.auto,
    max_pixels: MaxPixelsOpt = 100_000_000,
) -> None:
    """Edit photos in your browser: upload, pick a face, move sliders, download the edited photo and its latent.

    The models load once; requests queue. The page also shows the `stylecli edit` command that makes the same
    files, and the edit is callable from scripts through Gradio's client API (api_name "edit").

    \b
    Examples:
      stylecli serve
      stylecli serve --checkpoint my_e4e.pt --directions my_directions/ --port 8000 --no-browser
    """
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise fail("the browser editor needs Gradio: pip install 'stylecli[ui]'", 2)
    if importlib.util.find_spec("dlib") is None:
        raise fail("the browser editor finds faces with dlib: pip install 'stylecli[ui]'", 2)
    if directions is not None and not directions.is_dir():
        raise fail(f"--directions {directions}: not a folder", 2)
    if host not in LOCAL_HOSTS:
        typer.echo(f"stylecli: warning: listening on {host}: anyone who can reach this machine on that network can "
                   "use the editor (and this machine's compute)", err=True)
    if share:
        typer.echo("stylecli: warning: --share makes a public link: anyone with it can use the editor", err=True)
    from stylecli.serve.server import check_address, launch, prepare

    with handled():  # a taken port or an unknown host: said before the model loads (exit 2)
        check_address(host, port)
    with handled():  # a model that cannot load: its one-line message and exit code
        session = prepare(checkpoint, model, device.value, directions, max_pixels,
                          lambda line: typer.echo(f"stylecli: {line}", err=True))
    with handled():  # the page could not start after all (a race for the port): one line, the session closed
        launch(session, host, port, share, open_browser=not no_browser)
