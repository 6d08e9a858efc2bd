"""Evaluation: distortion and editability of one or several encoders on a set of faces, side by side.

`run_evaluation(EvaluationConfig(...))` is the whole driver (the `evaluate` command only parses and prints).
Reconstructions are compared with the input at 256x256 in [-1, 1]: the generator output is average-pooled to
256 and clamped to [-1, 1] (the range of an image: the official scripts compare saved images).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import torch

from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from stylecli.devices import synchronize
from stylecli.errors import StyleCliError, UsageError, ends_run
from stylecli.evaluation.metrics import METRICS, ArcFace, Stat, identity_similarity, l2, lec_distances, msssim, pool256
from stylecli.pipeline.editor import FaceEditor, preprocess
from stylecli.registry.networks import arcface_model, lpips_model, moco_model

__all__ = ["EvaluationConfig", "EvaluationReport", "arcface_model", "evaluate", "lpips_model", "moco_model",
           "run_evaluation"]


class EvaluationError(StyleCliError):
    pass


# Metrics that need an optional package (module name, pip extra).
METRIC_PACKAGES = {"lpips": ("lpips", "eval"), "msssim": ("pytorch_msssim", "eval")}


def missing_package(metric: str) -> str | None:
    """The pip line a metric needs, or None when it can run here."""
    import importlib.util

    if metric not in METRIC_PACKAGES:
        return None
    module, extra = METRIC_PACKAGES[metric]
    return None if importlib.util.find_spec(module) else f"pip install 'stylecli[{extra}]'"


def parse_metrics(spec: str | None) -> tuple[list[str], list[str]]:
    """--metrics -> (metrics, notes). None: every metric that can run here (the others named in a note).
    `speed` is accepted and always reported. A named metric whose package is missing is a usage error."""
    if spec is None:
        names = [m for m in METRICS if not missing_package(m)]
        skipped = [m for m in METRICS if missing_package(m)]
        notes = [f"skipped {', '.join(skipped)}: {missing_package(skipped[0])} to add them"] if skipped else []
        return names, notes
    names = [m.strip().lower() for m in spec.split(",") if m.strip() and m.strip().lower() != "speed"]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not (names or "speed" in spec):
        raise UsageError(f"--metrics {spec!r}: choose from {','.join(METRICS)},speed")
    for m in names:
        if missing_package(m):
            raise UsageError(f"--metrics {m} needs the {METRIC_PACKAGES[m][0]} package: {missing_package(m)}")
    return names, []


def parse_lec_edit(spec: str) -> tuple[str, float]:
    """'age' -> ('age', 3.0); 'sefa:0:5' -> ('sefa:0', 5.0); 'smile:-2' -> ('smile', -2.0)."""
    head, sep, tail = spec.rpartition(":")
    if sep:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return spec, 3.0


@dataclass
class ModelSource:
    """One model to evaluate: a checkpoint file, or a registry name."""

    label: str
    checkpoint: Path | None = None
    name: str = DEFAULT_MODEL
    kind: str | None = None  # its row in encoders.kinds ("e4e", "restyle", ...), once looked up

    def look_up_kind(self) -> str:
        """What the checkpoint is: a registry model's entry says (else it is downloaded first); a file's opts."""
        if self.kind is None and self.checkpoint is None:
            from stylecli.encoders.kinds import KINDS
            from stylecli.registry import weights

            encoder = weights.get_entry(self.name).encoder if self.name in weights.load_registry() else None
            self.kind = encoder if any(k.name == encoder for k in KINDS) else None
        if self.kind is None:
            from stylecli.encoders.kinds import checkpoint_kind, pretrained_checkpoint

            path = self.checkpoint if self.checkpoint is not None else pretrained_checkpoint(self.name)[0]
            self.kind = checkpoint_kind(Path(path))[0]
        return self.kind


def sources(checkpoints: list[Path] | None, models: list[str] | None) -> list[ModelSource]:
    """Checkpoint files, then registry models; e4e_ffhq when neither is given."""
    out = [ModelSource(str(c), c) for c in checkpoints or []] + [ModelSource(m, None, m) for m in models or []]
    return out or [ModelSource(DEFAULT_MODEL)]


@dataclass
class EvaluationConfig:
    inputs: list[Path]
    sources: list[ModelSource] = field(default_factory=lambda: [ModelSource(DEFAULT_MODEL)])
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    lec_edit: str = "age:3"  # NAME[:STRENGTH], an invertible edit
    align: bool = False  # inputs are photos to align (default: aligned crops)
    device: str = "auto"
    batch_size: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    steps: int | None = None  # ReStyle / HyperStyle passes (None: each model's own)
    w_encoder: Path | None = None  # HyperStyle's W encoder (None: the registry's faces_w_encoder)


def fidelity_options(config: EvaluationConfig) -> list[dict[str, Any]]:
    """Per source, the --steps / --w-encoder it takes: --steps goes to the ReStyle and HyperStyle models, --w-encoder
    to the HyperStyle ones. Either given where no model takes it is a usage error, as `invert` makes it (the
    checkpoints are looked up only when one is given)."""
    if config.steps is None and config.w_encoder is None:
        return [{} for _ in config.sources]
    if config.steps is not None and config.steps < 1:
        raise UsageError(f"--steps {config.steps}: needs at least 1 pass")
    if config.w_encoder is not None and not Path(config.w_encoder).is_file():
        raise UsageError(f"--w-encoder {config.w_encoder}: no such file")
    from stylecli.encoders.kinds import kind

    takes = [kind(source.look_up_kind()).capabilities.options for source in config.sources]
    if config.steps is not None and not any("steps" in t for t in takes):
        raise UsageError(f"--steps: {', '.join(s.label for s in config.sources)} encode in one pass (e4e / pSp); "
                         "--steps is for ReStyle and HyperStyle models")
    if config.w_encoder is not None and not any("w_encoder" in t for t in takes):
        raise UsageError(f"--w-encoder: none of {', '.join(s.label for s in config.sources)} is a HyperStyle model, "
                         "the only kind that takes a W encoder")
    return [{"steps": config.steps if "steps" in t else None,
             "w_encoder": config.w_encoder if "w_encoder" in t else None} for t in takes]


@dataclass
class Evaluation:
    checkpoint: str
    stats: dict[str, Stat] = field(default_factory=dict)
    steps: int | None = None  # the passes of a ReStyle / HyperStyle model (None: one-pass encoders)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    encode_s: float = 0.0
    synthesize_s: float = 0.0
    images: int = 0

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "steps": self.steps,
            "metrics": {k: s.summary(trimmed=(k == "lec")) for k, s in self.stats.items()},
            "speed": {"encode_s_per_image": self.encode_s / max(self.images, 1),
                      "synthesize_s_per_image": self.synthesize_s / max(self.images, 1)},
        }
        if per_image:
            out["per_image"] = self.per_image
        return out


@dataclass
class EvaluationReport:
    images: int
    failed_inputs: list[str]
    lec_edit: str | None
    results: list[Evaluation]

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        return {"images": self.images, "failed_inputs": self.failed_inputs, "lec_edit": self.lec_edit,
                "results": [r.to_dict(per_image) for r in self.results]}


def load_faces(config: EvaluationConfig, warn: Callable[[str], None] | None = None
               ) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """(name, aligned crop) of every readable input, and the messages of those that failed."""
    from stylecli.pipeline.sources import open_source

    photos = FaceEditor(None, None, "cpu", max_pixels=config.max_pixels)
    images, failed = [], []
    for p in config.inputs:
        try:
            images.append((str(p), open_source(photos, p, align=config.align, latents=False).faces[0].crop))
        except StyleCliError as exc:
            if ends_run(exc):  # a missing dlib or landmark model: no image can do better
                raise
            failed.append(str(exc))
            if warn:
                warn(str(exc))
    return images, failed


def run_evaluation(config: EvaluationConfig, progress: Callable[[int], None] | None = None,
                   warn: Callable[[str], None] | None = None,
                   note: Callable[[str], None] | None = None) -> EvaluationReport:
    """Every metric of the config over the inputs, for each model in turn (note: told of cache copies made)."""
    from stylecli.devices import resolve_device

    device = resolve_device(config.device)
    per_source = fidelity_options(config)  # usage errors before any work
    # the files no input can do without, before the first input (a failed download: exit 3, said once)
    lpips_fn = lpips_model(device) if "lpips" in config.metrics else None
    arcface = arcface_model(device) if "id" in config.metrics else None
    for source in config.sources:
        if not source.checkpoint:
            from stylecli.encoders.kinds import pretrained_checkpoint

            pretrained_checkpoint(source.name)
    images, failed = load_faces(config, warn)
    if not images:
        raise EvaluationError("no readable image among the inputs")
    results = []
    for source, fidelity in zip(config.sources, per_source):
        options = {"batch_size": config.batch_size, **fidelity}
        editor = (FaceEditor.from_checkpoint(source.checkpoint, device, note=note, **options) if source.checkpoint
                  else FaceEditor.from_pretrained(source.name, device, **options))
        edit, strength = lec_edit(config.lec_edit, editor) if "lec" in config.metrics else (None, 0.0)
        result = evaluate(editor, images, config.metrics, source.label, edit, strength, lpips_fn, arcface,
                          editor.batch_size, progress)
        result.steps = getattr(editor.encoder, "steps", None)
        results.append(result)
    return EvaluationReport(len(images), failed, config.lec_edit if "lec" in config.metrics else None, results)


def lec_edit(spec: str, editor: FaceEditor):
    """The edit LEC applies and undoes (it must have an exact inverse: not GANSpace)."""
    from stylecli.editing.base import EditError
    from stylecli.editing.ganspace import GanspaceEdit

    name, strength = parse_lec_edit(spec)
    try:
        edit = editor.resolve_edit(name)
    except EditError as exc:
        raise exc.for_option("--lec-edit") from None
    if isinstance(edit, GanspaceEdit):
        raise EvaluationError(f"--lec-edit {spec}: GANSpace edits have no exact inverse; use an InterFaceGAN, SeFa "
                              "or file direction")
    return edit, strength


class _Codec:
    """encode / synthesize on tensors as the metrics take them, through the FaceEditor's stages (its batching and
    precision). Per-photo generator weights (`Encoded.weights`) of the last encoded batch render the codes of that
    batch (LEC's edited codes are drawn by each photo's own generator, as its reconstruction is)."""

    def __init__(self, editor: FaceEditor):
        self.editor = editor
        self.weights: list | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        encoded = self.editor.encode(x)
        self.weights = encoded.weights
        return encoded.codes

    def synthesize(self, codes: torch.Tensor) -> torch.Tensor:
        weights = self.weights if self.weights is not None and len(self.weights) == len(codes) else None
        return self.editor.render(codes, weights)


def evaluate(
    editor: FaceEditor,
    images: Sequence[tuple[str, np.ndarray]],
    metrics: Sequence[str],
    name: str,
    lec_edit: Any = None,
    lec_strength: float = 3.0,
    lpips_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    arcface: ArcFace | None = None,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Run every metric over (name, uint8 image) pairs with one model. Timings wait for the device's queued
    work (CUDA runs asynchronously: without it they would measure only the launch)."""
    result = Evaluation(name, {m: Stat() for m in metrics})
    model = _Codec(editor)
    device = editor.device
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = torch.stack([preprocess(px) for _, px in chunk]).to(device)
        with torch.inference_mode():
            synchronize(device)
            t0 = perf_counter()
            encoded = editor.encode(x)
            synchronize(device)
            t1 = perf_counter()
            recon = pool256(editor.render(encoded.codes, encoded.weights)).clamp(-1, 1)
            synchronize(device)
            t2 = perf_counter()
            values: dict[str, torch.Tensor] = {}
            if "l2" in metrics:
                values["l2"] = l2(x, recon)
            if "lpips" in metrics:
                values["lpips"] = lpips_fn(x, recon)
            if "msssim" in metrics:
                values["msssim"] = msssim(x, recon)
            if "id" in metrics:
                values["id"] = identity_similarity(arcface, x, recon)
            if "lec" in metrics:
                values["lec"] = lec_distances(model, x, lambda c: lec_edit.apply(c, lec_strength),
                                              lambda c: lec_edit.apply(c, -lec_strength))
        result.encode_s += t1 - t0
        result.synthesize_s += t2 - t1
        result.images += len(chunk)
        for i, (image_name, _) in enumerate(chunk):
            row = {"image": image_name}
            for key, v in values.items():
                value = float(v[i])
                result.stats[key].values.append(value)
                row[key] = value
            result.per_image.append(row)
        if progress:
            progress(len(chunk))
    return result
