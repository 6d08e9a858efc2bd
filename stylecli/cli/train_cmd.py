"""stylecli train: the e4e training recipe."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli import app
from stylecli.cli.common import Device, DeviceOpt, QuietOpt, fail


@app.command()
def train(
    data: Annotated[Path | None, typer.Option("--data", help="Folder of training images (aligned faces).")] = None,
    val_data: Annotated[Path | None, typer.Option("--val-data", help="Folder of validation images.")] = None,
    generator: Annotated[
        str, typer.Option("--generator", help="StyleGAN2 generator: a registry name, a g_ema .pt, or an e4e/pSp "
                          "checkpoint (its decoder).")
    ] = "stylegan2_ffhq",
    out: Annotated[Path, typer.Option("--out", help="Run folder: latest.pt, best.pt, log.jsonl, images/.")] = Path(
        "runs/e4e"),
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder exactly.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Total training steps (default 300000).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per step (per GPU).")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Encoder learning rate.")] = 1e-4,
    optimizer: Annotated[str, typer.Option("--optimizer", help="ranger (RAdam + Lookahead) or adam.")] = "ranger",
    l2_lambda: Annotated[float, typer.Option("--l2-lambda")] = 1.0,
    lpips_lambda: Annotated[float, typer.Option("--lpips-lambda", help="LPIPS (AlexNet) weight.")] = 0.8,
    id_lambda: Annotated[float, typer.Option("--id-lambda", help="ArcFace identity weight (faces).")] = 0.1,
    moco_lambda: Annotated[
        float, typer.Option("--moco-lambda", help="MoCo feature similarity weight (other domains; 0.5 there).")
    ] = 0.0,
    delta_norm_lambda: Annotated[float, typer.Option("--delta-norm-lambda")] = 2e-4,
    w_discriminator_lambda: Annotated[
        float, typer.Option("--w-discriminator-lambda", help="Latent discriminator weight (0 turns it off).")
    ] = 0.1,
    w_discriminator_lr: Annotated[float, typer.Option("--w-discriminator-lr")] = 2e-5,
    r1: Annotated[float, typer.Option("--r1", help="R1 penalty weight.")] = 10.0,
    d_reg_every: Annotated[int, typer.Option("--d-reg-every", min=1)] = 16,
    use_w_pool: Annotated[bool, typer.Option("--use-w-pool", help="Pool of 50 past codes for the discriminator.")] = (
        False),
    progressive_start: Annotated[
        int | None, typer.Option("--progressive-start", help="Step of the first offset (faces: 20000); omit "
                                 "with --no-progressive to train every offset from the start.")
    ] = 20_000,
    no_progressive: Annotated[bool, typer.Option("--no-progressive", help="Train all offsets from step 0.")] = False,
    progressive_step_every: Annotated[int, typer.Option("--progressive-step-every", min=1)] = 2_000,
    encoder_init: Annotated[
        str, typer.Option("--encoder-init", help="arcface (IR-SE50 face weights, the recipe), none (random), or a "
                          ".pth path.")
    ] = "arcface",
    mean_latent_samples: Annotated[int, typer.Option("--mean-latent-samples", min=1)] = 100_000,
    save_every: Annotated[int, typer.Option("--save-every", min=1)] = 5_000,
    val_every: Annotated[int, typer.Option("--val-every", min=1)] = 1_000,
    image_every: Annotated[int, typer.Option("--image-every", min=1)] = 500,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    align: Annotated[bool, typer.Option("--align", help="Align raw photos on the fly.")] = False,
    device: DeviceOpt = Device.auto,
    quiet: QuietOpt = False,
) -> None:
    """Train an e4e encoder with the paper's recipe; checkpoints load in the official code and in stylecli.

    Every --X-lambda, schedule and optimizer setting is a flag; the defaults are the paper's for faces.
    Several GPUs: the same command under torchrun (DistributedDataParallel).

    \b
    Examples:
      stylecli train --data faces/train --val-data faces/test --generator stylegan2-ffhq-config-f.pt \\
          --out runs/ffhq --steps 300000 --batch-size 8
      stylecli train --resume runs/ffhq
      torchrun --nproc_per_node 8 -m stylecli train --data faces/train --out runs/ffhq
      stylecli invert photo.jpg --checkpoint runs/ffhq/best.pt
    """
    from dataclasses import replace

    from stylecli.errors import StyleCliError

    try:

        from stylecli.checkpoint import read_checkpoint
        from stylecli.pipeline import resolve_device
        from stylecli.training.trainer import TrainConfig, Trainer, init_distributed

        ckpt = None
        if resume is not None:
            path = resume / "latest.pt" if resume.is_dir() else resume
            ckpt = read_checkpoint(path)
            saved = (ckpt.get("stylecli_training") or {}).get("config")
            if not isinstance(saved, dict):
                raise StyleCliError(f"{path}: no training state in the checkpoint (not written by stylecli train)")
            config = TrainConfig(**saved)
            if steps is not None:  # a longer (or shorter) run than first planned
                config = replace(config, steps=steps)
        else:
            if data is None:
                raise typer.BadParameter("--data is required (or --resume RUN)", param_hint="--data")
            config = TrainConfig(
                data=str(data), val_data=str(val_data) if val_data else None, out=str(out), generator=generator,
                steps=steps or 300_000, batch_size=batch_size, lr=lr, optimizer=optimizer, l2_lambda=l2_lambda,
                lpips_lambda=lpips_lambda, id_lambda=id_lambda, moco_lambda=moco_lambda,
                delta_norm_lambda=delta_norm_lambda, w_discriminator_lambda=w_discriminator_lambda,
                w_discriminator_lr=w_discriminator_lr, r1=r1, d_reg_every=d_reg_every, use_w_pool=use_w_pool,
                progressive_start=None if no_progressive else progressive_start,
                progressive_step_every=progressive_step_every, mean_latent_samples=mean_latent_samples,
                save_every=save_every, val_every=val_every, image_every=image_every, log_every=log_every,
                seed=seed,
            )
        dist, dev = init_distributed(device.value)
        dev = dev or resolve_device(device.value)
        # On resume the encoder's architecture and weights come from the checkpoint: nothing to fetch.
        init = {k[8:]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")} if ckpt else encoder_init
        model, nets = _training_parts(config, init, config.seed, dev)
        aligner = None
        if align:
            from stylecli.faces import FaceAligner

            aligner = FaceAligner()
        trainer = Trainer(config, model, nets, dev, dist, aligner)
        if ckpt is not None:
            trainer.resume(ckpt)
        import time

        from stylecli.progress import Reporter
        from stylecli.runner import Summary

        reporter = Reporter(config.steps, quiet or not dist.main)
        t0, first = time.perf_counter(), trainer.state.step

        def progress(step: int, logs: dict) -> None:
            elapsed = time.perf_counter() - t0
            reporter.update(Summary(total=config.steps, done=step, faces=step - first, seconds=elapsed))

        trainer.run(progress=progress)
        reporter.stop()
        reporter.say(f"trained to step {trainer.state.step}: {Path(config.out) / 'latest.pt'}")
    except StyleCliError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; continue with `stylecli train --resume RUN` from the last saved checkpoint",
                   130) from None
    finally:
        torch_module = sys.modules.get("torch")
        if torch_module is not None and torch_module.distributed.is_initialized():
            torch_module.distributed.destroy_process_group()


def _training_parts(config, encoder_init, seed: int, device):
    """The model to train and the pretrained loss networks, resolved through the registry when needed."""
    from stylecli import weights
    from stylecli.checkpoint import read_checkpoint
    from stylecli.loader import load_generator
    from stylecli.training.losses import FeatureSimilarityLoss
    from stylecli.training.trainer import training_model

    gen_path = Path(config.generator)
    if not gen_path.is_file():
        gen_path = weights.resolve(config.generator)
    generator = load_generator(gen_path)
    # encoder_init: "arcface" (the recipe), "none", a path to IR-SE weights, or a state dict (resume).
    if encoder_init == "arcface" or config.id_lambda > 0:
        arc_path = weights.resolve("arcface_ir_se50")
    if isinstance(encoder_init, dict):
        init_state = encoder_init
    elif encoder_init == "none":
        init_state = None
    else:
        init_state = read_checkpoint(arc_path if encoder_init == "arcface" else Path(encoder_init))
    model = training_model(generator, init_state, config.mean_latent_samples, seed)
    nets = _loss_nets(config, device)
    if config.id_lambda > 0:
        from stylecli.evaluation import arcface_model

        nets.identity = FeatureSimilarityLoss(arcface_model(device, arc_path), crop_face=True)
    return model, nets


def _loss_nets(config, device):
    """LPIPS and MoCo networks (separate so tests can swap them for small random ones)."""
    from stylecli.training.trainer import LossNets

    nets = LossNets()
    if config.lpips_lambda > 0:
        from stylecli.evaluation import lpips_model

        nets.lpips = lpips_model(device)
    if config.moco_lambda > 0:
        from stylecli.evaluation import moco_model
        from stylecli.training.losses import FeatureSimilarityLoss

        nets.moco = FeatureSimilarityLoss(moco_model(device), crop_face=False, size=224)
    return nets
