"""stylecli train: parses the options, calls stylecli.training, prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stylecli.cli.common import Device, DeviceOpt, QuietOpt, fail
from stylecli.training.config import TrainConfig

# The defaults shown and used are TrainConfig's (the paper's recipe); the module reads no torch.
_D = TrainConfig()
_PROGRESSIVE_START = _D.progressive_start or 0


def _opt(flag: str, help: str, **kw: Any) -> Any:
    return typer.Option(flag, help=help, **kw)


DataOpt = Annotated[Path | None, _opt("--data", "Folder of training images (aligned faces, or photos with --align).")]
ValDataOpt = Annotated[Path | None, _opt("--val-data", "Folder of validation images (best.pt follows their loss).")]
GeneratorOpt = Annotated[str, _opt("--generator", "StyleGAN2 generator: a registry name, a g_ema .pt, or an "
                                   "e4e/pSp checkpoint (its decoder).")]
OutOpt = Annotated[Path, _opt("--out", "Run folder: latest.pt, best.pt (with --val-data), log.jsonl, images/.")]
ResumeOpt = Annotated[Path | None, _opt("--resume", "Continue the run in this folder (or .pt) exactly; only --steps "
                                        "and --workers may differ from the saved run.")]
StepsOpt = Annotated[int | None, _opt("--steps", f"Total training steps (default {_D.steps}).", min=1)]
BatchOpt = Annotated[int, _opt("--batch-size", "Images per step (per process).", min=1)]
LrOpt = Annotated[float, _opt("--lr", "Encoder learning rate.")]
OptimizerOpt = Annotated[str, _opt("--optimizer", "ranger (the recipe: RAdam + gradient centralization + "
                                   "Lookahead) or adam.")]
L2Opt = Annotated[float, _opt("--l2-lambda", "Pixel L2 loss weight.")]
LpipsOpt = Annotated[float, _opt("--lpips-lambda", "LPIPS (AlexNet) loss weight.")]
IdOpt = Annotated[float, _opt("--id-lambda", "ArcFace identity loss weight (faces).")]
MocoOpt = Annotated[float, _opt("--moco-lambda", "MoCo feature similarity weight (other domains; 0.5 there).")]
DeltaOpt = Annotated[float, _opt("--delta-norm-lambda", "Weight of the offsets' L2 norm (progressive training).")]
DiscOpt = Annotated[float, _opt("--w-discriminator-lambda", "Latent discriminator loss weight (0 turns it off).")]
DiscLrOpt = Annotated[float, _opt("--w-discriminator-lr", "Latent discriminator learning rate (Adam).")]
R1Opt = Annotated[float, _opt("--r1", "R1 penalty weight of the discriminator.")]
DRegOpt = Annotated[int, _opt("--d-reg-every", "Apply the R1 penalty every N steps.", min=1)]
PoolOpt = Annotated[bool, _opt("--use-w-pool", f"Show the discriminator a pool of {_D.w_pool_size} past codes.")]
ProgStartOpt = Annotated[int, _opt("--progressive-start", "Step at which the first offset starts training "
                                   f"(faces: {_PROGRESSIVE_START}).", min=0)]
NoProgOpt = Annotated[bool, _opt("--no-progressive", "Train every offset from step 0 (no delta regularization).")]
ProgEveryOpt = Annotated[int, _opt("--progressive-step-every", "Steps between enabling two offsets.", min=1)]
InitOpt = Annotated[str, _opt("--encoder-init", "arcface (IR-SE50 face weights, the recipe), none (random), an "
                              "IR-SE .pth, or an e4e checkpoint to continue from.")]
MeanOpt = Annotated[int, _opt("--mean-latent-samples", "Mapping-network samples averaged into the mean latent.",
                              min=1)]
SaveOpt = Annotated[int, _opt("--save-every", "Write latest.pt every N steps.", min=1)]
ValOpt = Annotated[int, _opt("--val-every", "Validate on --val-data every N steps (and at the last step).", min=1)]
ImageOpt = Annotated[int, _opt("--image-every", "Write an input | reconstruction grid every N steps.", min=1)]
LogOpt = Annotated[int, _opt("--log-every", "Append the loss terms to log.jsonl every N steps.", min=1)]
SeedOpt = Annotated[int, _opt("--seed", "Seed of the data order, flips, draws and new weights.")]
WorkersOpt = Annotated[int, _opt("--workers", "Data loading processes (0: in the training process).", min=0)]
AlignOpt = Annotated[bool, _opt("--align", "The images are photos: align each face once (cached in the run "
                                "folder) before training.")]

# Options that are not TrainConfig fields.
_NOT_CONFIG = {"ctx", "resume", "no_progressive", "device", "quiet"}


def train(
    ctx: typer.Context, data: DataOpt = None, val_data: ValDataOpt = None,
    generator: GeneratorOpt = _D.generator, out: OutOpt = Path(_D.out), resume: ResumeOpt = None,
    steps: StepsOpt = None, batch_size: BatchOpt = _D.batch_size, lr: LrOpt = _D.lr,
    optimizer: OptimizerOpt = _D.optimizer, l2_lambda: L2Opt = _D.l2_lambda, lpips_lambda: LpipsOpt = _D.lpips_lambda,
    id_lambda: IdOpt = _D.id_lambda, moco_lambda: MocoOpt = _D.moco_lambda,
    delta_norm_lambda: DeltaOpt = _D.delta_norm_lambda, w_discriminator_lambda: DiscOpt = _D.w_discriminator_lambda,
    w_discriminator_lr: DiscLrOpt = _D.w_discriminator_lr, r1: R1Opt = _D.r1, d_reg_every: DRegOpt = _D.d_reg_every,
    use_w_pool: PoolOpt = _D.use_w_pool, progressive_start: ProgStartOpt = _PROGRESSIVE_START,
    no_progressive: NoProgOpt = False, progressive_step_every: ProgEveryOpt = _D.progressive_step_every,
    encoder_init: InitOpt = _D.encoder_init, mean_latent_samples: MeanOpt = _D.mean_latent_samples,
    save_every: SaveOpt = _D.save_every, val_every: ValOpt = _D.val_every, image_every: ImageOpt = _D.image_every,
    log_every: LogOpt = _D.log_every, seed: SeedOpt = _D.seed, workers: WorkersOpt = _D.workers,
    align: AlignOpt = _D.align, device: DeviceOpt = Device.auto, quiet: QuietOpt = False,
) -> None:
    """Train an e4e encoder with the paper's recipe; checkpoints load in the official code and in stylecli.

    Every --X-lambda, schedule and optimizer setting is a flag; the defaults are the paper's for faces.
    Several GPUs: the same command under torchrun (DistributedDataParallel).

    \b
    Examples:
      stylecli train --data faces/train --val-data faces/test --generator stylegan2-ffhq-config-f.pt \\
          --out runs/ffhq --steps 300000 --batch-size 8
      stylecli train --resume runs/ffhq --steps 400000
      torchrun --nproc_per_node 8 -m stylecli train --data faces/train --out runs/ffhq
      stylecli invert photo.jpg --checkpoint runs/ffhq/best.pt
    """
    values = _config_values(dict(locals()))
    from stylecli.errors import UsageError

    try:
        from stylecli.training import setup
        from stylecli.training.checks import check_run

        saved = None
        if resume is not None:
            saved = setup.load_run(resume)
            config = _resumed_config(saved, _explicit(ctx, values))
        elif data is None:
            raise UsageError("--data is required (or --resume RUN)")
        else:
            config = TrainConfig(**values)
        if "val_every" in _explicit(ctx, values) and not config.val_data:
            raise UsageError(f"--val-every {val_every}: there is nothing to validate on; give --val-data FOLDER "
                             "too, or drop --val-every")
        check_run(config, resumed=saved is not None)  # before any folder is made or weights are resolved
        with setup.run_folder(Path(config.out)):  # a run that fails before writing anything leaves no folder
            _run(setup, config, saved, device.value, quiet)
    except KeyboardInterrupt:
        raise fail("interrupted; continue with `stylecli train --resume RUN` from the last saved checkpoint",
                   130) from None
    finally:
        torch_module = sys.modules.get("torch")
        if torch_module is not None and torch_module.distributed.is_initialized():
            torch_module.distributed.destroy_process_group()


def _config_values(params: dict[str, Any]) -> dict[str, Any]:
    """The command's parameters as TrainConfig fields."""
    values = {k: v for k, v in params.items() if k not in _NOT_CONFIG}
    values["data"] = str(values["data"]) if values["data"] is not None else ""
    values["val_data"] = str(values["val_data"]) if values["val_data"] is not None else None
    values["out"] = str(values["out"])
    values["steps"] = values["steps"] or _D.steps
    values["progressive_start"] = None if params["no_progressive"] else values["progressive_start"]
    return values


def _explicit(ctx: typer.Context, values: dict[str, Any]) -> dict[str, Any]:
    """The config values the user gave on the command line (or through the environment)."""
    def given(name: str) -> bool:  # compared by name: Typer may bring its own copy of click's enum
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    out = {k: v for k, v in values.items() if given(k)}
    if given("no_progressive"):
        out["progressive_start"] = values["progressive_start"]
    return out


def _resumed_config(saved: Any, given: dict[str, Any]) -> Any:
    """The saved run's config with the allowed changes; contradicting flags are a usage error (exit 2)."""
    from dataclasses import replace

    from stylecli.training.config import RESUMABLE, resume_conflicts

    conflicts = resume_conflicts(saved.config, given)
    if conflicts:
        listed = ", ".join(f"--{k.replace('_', '-')} {v} (the run has {old})" for k, v, old in conflicts)
        raise fail(f"--resume {saved.path}: flags contradict the saved run: {listed}; drop them to continue "
                   "the run, or start a new run with another --out", 2)
    return replace(saved.config, **{k: v for k, v in given.items() if k in RESUMABLE})


def _run(setup: Any, config: Any, saved: Any, device: str, quiet: bool) -> None:
    """Prepare the trainer, train with a progress line, say where the checkpoint is."""
    import time

    from stylecli.batch.progress import Reporter
    from stylecli.batch.runner import Summary

    trainer = setup.prepare(config, device, saved, report=None if quiet else lambda m: typer.echo(m, err=True))
    reporter = Reporter(config.steps, quiet or not trainer.dist.main, unit_name="steps")
    t0, first = time.perf_counter(), trainer.state.step

    def progress(step: int, logs: dict) -> None:
        reporter.update(Summary(total=config.steps, done=step, units=step - first, unit_name="steps",
                                seconds=time.perf_counter() - t0))

    trainer.run(progress=progress)
    reporter.stop()
    reporter.say(trained_line(Path(config.out), trainer.state.step))


def trained_line(out: Path, step: int) -> str:
    """The line `train` ends with: the checkpoint to continue from (best.pt when validation wrote one)."""
    best, latest = out / "best.pt", out / "latest.pt"
    if best.is_file():
        return f"trained to step {step}: {best} (lowest validation loss; the last step is {latest})"
    return f"trained to step {step}: {latest} (no best.pt: it follows the --val-data loss)"
