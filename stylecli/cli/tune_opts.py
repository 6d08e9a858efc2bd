"""The pivotal tuning options shared by `invert` and `edit` (PTI's recipe as the defaults)."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from stylecli.constants import PTI_LPIPS_STOP, PTI_LR, PTI_STEPS
from stylecli.errors import note_line

PTI_LR_TEXT = f"{PTI_LR:.0e}".replace("e-0", "e-")  # 3e-4


class PivotKind(str, Enum):
    encoder = "encoder"
    project = "project"


TuneOpt = Annotated[bool, typer.Option(
    "--tune", help="Pivotal tuning (PTI): adapt the generator to each face so the reconstruction is near-exact and "
    "edits render through it; writes NAME_tuned.npy and NAME_tuned.tuned.safetensors (~57 MB per face at 1024 px). "
    f"Slow: up to {PTI_STEPS} steps.")]
TuneStepsOpt = Annotated[int | None, typer.Option(
    "--tune-steps", min=0, show_default=False, help=f"Most tuning steps per face [default: {PTI_STEPS}].")]
TuneLrOpt = Annotated[float | None, typer.Option(
    "--tune-lr", show_default=False, help=f"Adam learning rate of tuning [default: {PTI_LR_TEXT}].")]
TuneStopOpt = Annotated[float | None, typer.Option(
    "--tune-lpips-stop", min=0.0, show_default=False,
    help=f"Stop tuning a face once its LPIPS is at most this [default: {PTI_LPIPS_STOP:g}].")]
LocalityOpt = Annotated[bool, typer.Option(
    "--locality", help="PTI's locality regularization: keep the generator unchanged away from the face's code.")]
PivotOpt = Annotated[PivotKind | None, typer.Option(
    "--pivot", show_default=False, help="The code tuning starts from: the encoder's (default) or PTI's own W "
    "projection (450 more steps).")]
NoTuneOpt = Annotated[bool, typer.Option(
    "--no-tune", help="Ignore a latent's saved NAME.tuned.safetensors (render through the shared generator); "
    "its outputs are named NAME_untuned_..., apart from the tuned renders.")]


def make_tuner(tune: bool, steps: int | None, lr: float | None, stop: float | None, locality: bool,
               pivot: PivotKind | None, quiet: bool, no_tune: bool = False, inputs: list[Path] | None = None):
    """A Tuner for --tune, None without it; tuning options without --tune are a usage error. Without --tune,
    `edit` says which input latents render through their saved tuned weights (`inputs`)."""
    if tune and no_tune:
        raise typer.BadParameter("--tune and --no-tune exclude each other", param_hint="--no-tune")
    given = [name for name, value in (("--tune-steps", steps), ("--tune-lr", lr), ("--tune-lpips-stop", stop),
                                      ("--locality", locality or None), ("--pivot", pivot)) if value is not None]
    if not tune:
        if given:
            raise typer.BadParameter(f"{given[0]} needs --tune", param_hint=given[0])
        saved_tuning_notes(inputs or [], no_tune, quiet)
        return None
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise typer.BadParameter(f"{lr} is not a learning rate (> 0)", param_hint="--tune-lr")
    from stylecli.tuning import TuningConfig
    from stylecli.tuning.progress import TuningBars
    from stylecli.tuning.stage import Tuner

    defaults = TuningConfig()
    config = TuningConfig(steps=defaults.steps if steps is None else steps, lr=lr or defaults.lr,
                          lpips_stop=defaults.lpips_stop if stop is None else stop, locality=locality)
    return Tuner(config, pivot=(pivot or PivotKind.encoder).value, progress=TuningBars(quiet))


def saved_tuning_notes(paths: list[Path], no_tune: bool, quiet: bool) -> None:
    """Say which latents render through their saved tuned weights (or that --no-tune ignores them)."""
    if quiet:
        return
    from stylecli.naming import is_latent, tuned_weights_path

    for path in paths:
        tuned = tuned_weights_path(path)
        if is_latent(path) and tuned.exists():
            what = "ignoring" if no_tune else "rendering through"
            tail = "" if no_tune else " (--no-tune ignores it)"
            typer.echo(note_line(f"{path}: {what} {tuned}{tail}"), err=True)
