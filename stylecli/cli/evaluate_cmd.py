"""stylecli evaluate: distortion and editability metrics for one or several checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stylecli.cli import app
from stylecli.cli.common import (
    BatchOpt,
    Device,
    DeviceOpt,
    InputsArg,
    MaxPixelsOpt,
    QuietOpt,
    expand_paths,
    fail,
    make_inverter,
    print_rows,
)


@app.command()
def evaluate(
    inputs: InputsArg,
    checkpoint: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="Checkpoint to evaluate; repeat to compare several.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Registry model to evaluate; repeatable.")
    ] = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated: l2,lpips,msssim,id,lec.")] = (
        "l2,lpips,msssim,id,lec"),
    lec_edit: Annotated[
        str, typer.Option("--lec-edit", help="Invertible edit for LEC, NAME[:STRENGTH]: age:3, sefa:0:5, my.npy:2.")
    ] = "age:3",
    align: Annotated[bool, typer.Option("--align", help="Align faces first (default: inputs are aligned).")] = False,
    per_image: Annotated[bool, typer.Option("--per-image", help="Include every image's values in the JSON.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one CSV row per checkpoint.")] = None,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = None,
    max_pixels: MaxPixelsOpt = 100_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure distortion (L2, LPIPS, MS-SSIM, identity) and editability (LEC) of encoders on a folder.

    Inputs are aligned face crops (use --align for raw photos); reconstructions are compared at 256 px.

    \b
    Examples:
      stylecli evaluate celeba_test/ --checkpoint e4e_ffhq_encode.pt --metrics l2,lpips,msssim,id,lec --json
      stylecli evaluate celeba_test/ --checkpoint psp.pt --checkpoint e4e.pt --csv results.csv

    \b
    Metrics:
      l2      mean squared error at 256 px in [-1, 1] (lower is better)
      lpips   LPIPS perceptual distance, AlexNet (lower is better)
      msssim  multi-scale SSIM (higher is better, 1 = identical)
      id      ArcFace cosine similarity of input and reconstruction (higher is better)
      lec     latent editing consistency, 1st-99th percentile trimmed mean (lower is better)
    """
    from stylecli.errors import StyleCliError

    try:
        from stylecli import evaluation as ev

        names = ev.parse_metrics(metrics)
    except StyleCliError as exc:
        raise typer.BadParameter(str(exc), param_hint="--metrics") from None
    sources: list[tuple[str, Path | None, str]] = [(str(c), c, "") for c in checkpoint or []]
    sources += [(m, None, m) for m in model or []]
    if not sources:
        sources = [("e4e_ffhq", None, "e4e_ffhq")]
    paths = expand_paths(inputs)
    reporter = None
    try:
        from stylecli.images import read_image
        from stylecli.pipeline import resolve_device
        from stylecli.runner import RunOptions, single_item

        dev = resolve_device(device.value)
        aligner = None
        if align:
            from stylecli.faces import FaceAligner

            aligner = FaceAligner()
        options = RunOptions(align=align, max_pixels=max_pixels)
        images, skipped = [], []
        for p in paths:
            try:
                if align:
                    images.append((str(p), single_item(p, options, aligner).pixels))
                else:
                    images.append((str(p), read_image(p, max_pixels).pixels))
            except StyleCliError as exc:
                skipped.append(str(exc))
                if not quiet:
                    typer.echo(f"stylecli: error: {exc}", err=True)
        if not images:
            raise ev.EvaluationError("no readable image among the inputs")
        lpips_fn = ev.lpips_model(dev) if "lpips" in names else None
        arcface = ev.arcface_model(dev) if "id" in names else None
        import time

        from stylecli.progress import Reporter
        from stylecli.runner import Summary

        total = len(images) * len(sources)
        reporter = Reporter(total, quiet)
        started = time.perf_counter()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            reporter.update(Summary(total=total, done=done[0], faces=done[0], seconds=time.perf_counter() - started))

        results = []
        for label, ckpt, registry_name in sources:
            inverter = make_inverter(ckpt, registry_name or "e4e_ffhq", device.value, batch_size)
            edit, strength = None, 0.0
            if "lec" in names:
                edit, strength = _lec_edit(lec_edit, inverter)
            results.append(ev.evaluate(inverter, images, names, label, edit, strength, lpips_fn, arcface,
                                       inverter.batch_size, tick))
    except StyleCliError as exc:
        if reporter:
            reporter.stop()
        raise fail(str(exc)) from None
    reporter.stop()
    document = {"images": len(images), "failed_inputs": skipped, "lec_edit": lec_edit if "lec" in names else None,
                "results": [r.to_dict(per_image) for r in results]}
    if as_json:
        typer.echo(json.dumps(document))
    if csv_path is not None:
        _write_csv(csv_path, document, names)
    if not quiet:
        _print_table(document, names)
    raise typer.Exit(1 if skipped else 0)


def _lec_edit(spec: str, inverter):
    from stylecli.editing.ganspace import GanspaceEdit
    from stylecli.evaluation import EvaluationError, parse_lec_edit

    name, strength = parse_lec_edit(spec)
    edit = inverter.resolve_edit(name)
    if isinstance(edit, GanspaceEdit):
        raise EvaluationError(f"--lec-edit {spec}: GANSpace edits have no exact inverse; use an InterFaceGAN, SeFa "
                              "or file direction")
    return edit, strength


def _write_csv(path: Path, document: dict, names: list[str]) -> None:
    import csv
    import io

    from stylecli.atomic import atomic_path

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["checkpoint", *[f"{m}_{s}" for m in names for s in ("mean", "std", "n")],
                     "encode_s_per_image", "synthesize_s_per_image"])
    for r in document["results"]:
        writer.writerow([r["checkpoint"], *[r["metrics"][m][s] for m in names for s in ("mean", "std", "n")],
                         r["speed"]["encode_s_per_image"], r["speed"]["synthesize_s_per_image"]])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def _print_table(document: dict, names: list[str]) -> None:
    columns = {"checkpoint": lambda r: r["checkpoint"]}
    for m in names:
        columns[m] = lambda r, m=m: f"{r['metrics'][m]['mean']:.4f} ± {r['metrics'][m]['std']:.4f}"
    columns["encode s/img"] = lambda r: f"{r['speed']['encode_s_per_image']:.3f}"
    columns["synth s/img"] = lambda r: f"{r['speed']['synthesize_s_per_image']:.3f}"
    print_rows(document["results"], columns, title=f"{document['images']} images", stderr=True)
