"""stylecli evaluate: distortion and editability metrics for one or several checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylecli.batch.progress import Reporter
from stylecli.cli.common import (
    BatchOpt,
    Device,
    DeviceOpt,
    InputsArg,
    MaxPixelsOpt,
    OverwriteOpt,
    QuietOpt,
    StepsOpt,
    WEncoderOpt,
    check_output,
    expand_paths,
    print_json,
    print_rows,
)
from stylecli.constants import DEFAULT_MAX_PIXELS
from stylecli.errors import counted, error_line, note_line

CheckpointsOpt = Annotated[
    list[Path] | None, typer.Option("--checkpoint", help="Checkpoint to evaluate; repeat to compare several.")
]
ModelsOpt = Annotated[list[str] | None, typer.Option("--model", help="Registry model to evaluate; repeatable.")]
MetricsOpt = Annotated[
    str | None, typer.Option("--metrics", help="Comma-separated: l2,lpips,msssim,id,lec (speed is always "
                             "reported). Default: every metric whose package is installed.", show_default=False)
]
LecEditOpt = Annotated[
    str, typer.Option("--lec-edit", help="Invertible edit for LEC, NAME[:STRENGTH]: age:3, sefa:0:5, my.npy:2.")
]
AlignOpt = Annotated[bool, typer.Option("--align", help="Align faces first (default: inputs are aligned).")]
PerImageOpt = Annotated[bool, typer.Option("--per-image", help="Include every image's values in the JSON.")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Also write one CSV row per checkpoint.")]
DocJsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def evaluate(
    inputs: InputsArg,
    checkpoint: CheckpointsOpt = None,
    model: ModelsOpt = None,
    metrics: MetricsOpt = None,
    lec_edit: LecEditOpt = "age:3",
    align: AlignOpt = False,
    per_image: PerImageOpt = False,
    csv_path: CsvOpt = None,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    steps: StepsOpt = None,
    w_encoder: WEncoderOpt = None,
    as_json: DocJsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure distortion (L2, LPIPS, MS-SSIM, identity) and editability (LEC) of encoders on a folder.

    Inputs are aligned face crops (use --align for raw photos). Reconstructions are pooled to 256 px and
    clamped to [-1, 1], then compared with the input.

    \b
    Examples:
      stylecli evaluate celeba_test/ --checkpoint e4e_ffhq_encode.pt --metrics l2,lpips,msssim,id,lec --json
      stylecli evaluate celeba_test/ --checkpoint psp.pt --checkpoint e4e.pt --csv results.csv
      stylecli evaluate celeba_test/ --model e4e_ffhq --model restyle_e4e_ffhq --model hyperstyle_ffhq --steps 3

    --steps applies to the ReStyle and HyperStyle models, --w-encoder to the HyperStyle ones.

    \b
    Metrics:
      l2      mean squared error at 256 px in [-1, 1] (lower is better)
      lpips   LPIPS perceptual distance, AlexNet (lower is better)
      msssim  multi-scale SSIM (higher is better, 1 = identical)
      id      ArcFace cosine similarity of input and reconstruction (higher is better)
      lec     latent editing consistency, 1st-99th percentile trimmed mean (lower is better)
      speed   seconds per image to encode and to synthesize (always reported)
    """
    from stylecli.evaluation import driver as ev

    config = ev.EvaluationConfig(expand_paths(inputs), ev.sources(checkpoint, model), [], lec_edit, align,
                                 device.value, batch_size, max_pixels, steps, w_encoder)
    config.metrics, notes = ev.parse_metrics(metrics)
    check_output(csv_path, overwrite, "--csv")
    ev.fidelity_options(config)  # --steps / --w-encoder that no model takes: exit 2 before any work
    for note in notes if not quiet else []:
        typer.echo(f"stylecli: {note}", err=True)
    report = _run(config, quiet)
    _publish(report.to_dict(per_image), config.metrics, as_json, quiet, csv_path, overwrite)
    raise typer.Exit(1 if report.failed_inputs else 0)


def _publish(document: dict, metrics: list[str], as_json: bool, quiet: bool, csv_path: Path | None,
             overwrite: bool) -> None:
    """The results: the table on stdout (even with -q), or JSON there and the table on stderr (not with -q); CSV."""
    if as_json:
        print_json(document)
    if csv_path is not None:
        _write_csv(csv_path, document, metrics, overwrite)
    if not as_json or not quiet:
        _print_table(document, metrics, stderr=as_json)


def _run(config, quiet: bool):
    from stylecli.evaluation import driver as ev

    reporter = Reporter(len(config.inputs) * len(config.sources), quiet)
    try:
        return ev.run_evaluation(config, reporter.advance, warn=lambda m: reporter.say(error_line(m), error=True),
                                 note=lambda m: reporter.say(note_line(m)))
    finally:
        reporter.stop()


def _write_csv(path: Path, document: dict, names: list[str], overwrite: bool) -> None:
    import csv
    import io

    from stylecli.files.atomic import atomic_path

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["checkpoint", *[f"{m}_{s}" for m in names for s in ("mean", "std", "n")],
                     "encode_s_per_image", "synthesize_s_per_image"])
    for r in document["results"]:
        writer.writerow([r["checkpoint"], *[r["metrics"][m][s] for m in names for s in ("mean", "std", "n")],
                         r["speed"]["encode_s_per_image"], r["speed"]["synthesize_s_per_image"]])
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(buf.getvalue())


def _print_table(document: dict, names: list[str], stderr: bool) -> None:
    columns = {"checkpoint": lambda r: r["checkpoint"]}
    for m in names:
        columns[m] = lambda r, m=m: f"{r['metrics'][m]['mean']:.4f} ± {r['metrics'][m]['std']:.4f}"
    columns["encode s/img"] = lambda r: f"{r['speed']['encode_s_per_image']:.3f}"
    columns["synth s/img"] = lambda r: f"{r['speed']['synthesize_s_per_image']:.3f}"
    print_rows(document["results"], columns, title=counted(document['images'], 'image'), stderr=stderr)
