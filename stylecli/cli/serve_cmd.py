"""serve: the browser editor, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli.common import Device, DeviceOpt, MaxPixelsOpt
from stylecli.cli.tune_opts import TuneLrOpt, TuneStopOpt, make_tuner
from stylecli.constants import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    PTI_STEPS,
    SERVE_MAX_SESSIONS,
    SERVE_MAX_UPLOAD_MB,
    SERVE_SESSION_TIMEOUT_MIN,
    SERVE_TUNE_STEPS,
)
from stylecli.errors import warning_line

CheckpointsOpt = Annotated[
    list[Path] | None,
    typer.Option("--checkpoint", help="A local checkpoint (.pt: e4e, pSp, ReStyle or HyperStyle) instead of "
                 "--model; repeat (or add --model) to offer several encoders of one generator.", show_default=False),
]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", help=f"Registry model (see `stylecli weights list`) [default: {DEFAULT_MODEL}]; "
                 "repeatable. The first --checkpoint, else the first --model, gives the sliders.", show_default=False),
]
PageTuneStepsOpt = Annotated[
    int | None,
    typer.Option("--tune-steps", min=1, show_default=False,
                 help="Most steps of the page's pivotal tuning (the encoder choice '... + tuning') "
                 f"[default: {SERVE_TUNE_STEPS}; the CLI's --tune runs up to {PTI_STEPS}]."),
]


MaxSessionsOpt = Annotated[
    int, typer.Option("--max-sessions", min=1, help="Browser sessions with files on this server at once; at the "
                      "bound the oldest idle one is dropped (a newcomer hears \"busy\" while every one is in use).")
]
SessionTimeoutOpt = Annotated[
    float, typer.Option("--session-timeout", min=0.1, metavar="MIN", help="Minutes a session may be idle before "
                        "its files are removed.")
]
MaxUploadOpt = Annotated[float, typer.Option("--max-upload-mb", min=0.001, help="The largest upload, in MB.")]


def serve(
    checkpoint: CheckpointsOpt = None,
    model: ModelsOpt = None,
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
    tune_steps: PageTuneStepsOpt = None,
    tune_lr: TuneLrOpt = None,
    tune_lpips_stop: TuneStopOpt = None,
    device: DeviceOpt = Device.auto,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_sessions: MaxSessionsOpt = SERVE_MAX_SESSIONS,
    session_timeout: SessionTimeoutOpt = SERVE_SESSION_TIMEOUT_MIN,
    max_upload_mb: MaxUploadOpt = SERVE_MAX_UPLOAD_MB,
) -> None:
    """Edit photos in your browser: upload, pick a face, move sliders, download the edited photo and its latent.

    The models load once; requests queue. The page offers each model's encoder and pivotal tuning from it (a
    short run: --tune-steps); it also shows the `stylecli edit` command that makes the same files, and the edit
    is callable from scripts through Gradio's client API (api_name "edit").

    \b
    Examples:
      stylecli serve
      stylecli serve --model e4e_ffhq --model restyle_e4e_ffhq --model hyperstyle_ffhq
      stylecli serve --checkpoint my_e4e.pt --directions my_directions/ --port 8000 --no-browser
    """
    from stylecli.serve.server import check_address, check_requirements, exposure_warnings, launch, models_of, prepare
    from stylecli.serve.session import Limits

    check_requirements(directions)
    tuning = make_tuner(True, SERVE_TUNE_STEPS if tune_steps is None else tune_steps, tune_lr, tune_lpips_stop, False,
                        None, quiet=True).config  # the CLI's checks and defaults, the page's step count
    for warning in exposure_warnings(host, share):
        typer.echo(warning_line(warning), err=True)
    # the same model twice, a taken port or an unknown host: said before any model loads (exit 2)
    models_of(checkpoint, model)
    check_address(host, port)
    # a model that cannot load (or fit the first): its one-line message and exit code
    limits = Limits(max_sessions, session_timeout * 60, round(max_upload_mb * 1_000_000))
    session = prepare(checkpoint, model, device.value, directions, max_pixels,
                      lambda line: typer.echo(f"stylecli: {line}", err=True), tuning, limits)
    # the page could not start after all (a race for the port): one line, the session closed
    launch(session, host, port, share, open_browser=not no_browser)

