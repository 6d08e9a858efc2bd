"""The tuning stage of the pipeline: per face, a pivot (the encoder's code or PTI's W projection) and generator
weights tuned so that the pivot renders the face at full resolution."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from stylecli.encoders.base import Encoded
from stylecli.naming import tuning_tag
from stylecli.tuning.generator_weights import GeneratorWeights, fingerprint
from stylecli.tuning.progress import FaceProgress
from stylecli.tuning.projection import ProjectionConfig, project_w
from stylecli.tuning.pti import LpipsFn, TuningConfig, TuningResult, target_tensor, tune

Pivot = Literal["encoder", "project"]
PIVOTS = ("encoder", "project")
# (label of the face, maximum steps) -> what follows that face's tuning (see stylecli.tuning.progress), or None.
ProgressFactory = Callable[[str, int], FaceProgress | None]


@dataclass
class TunedFace:
    pivot: Tensor  # [n_styles, style_dim]: the code the weights were tuned for (edits start from it)
    weights: GeneratorWeights
    result: TuningResult


@dataclass
class Tuner:
    """Pivotal tuning for any number of faces, one after another.

    lpips: the perceptual distance (default: the `lpips` package's AlexNet LPIPS, loaded on first use).
    progress: makes a per-face progress callback (the CLI's bar); None for silence.
    """

    config: TuningConfig = field(default_factory=TuningConfig)
    pivot: Pivot = "encoder"
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    lpips: LpipsFn | None = None
    progress: ProgressFactory | None = None
    _fingerprints: dict[int, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.pivot not in PIVOTS:
            raise ValueError(f"pivot must be one of {', '.join(PIVOTS)}, got {self.pivot!r}")

    def perceptual(self, device: torch.device) -> LpipsFn:
        if self.lpips is None:
            from stylecli.registry.networks import lpips_model

            self.lpips = lpips_model(device)
        return self.lpips

    def metadata(self) -> dict[str, str]:
        """What the stored file records about how it was tuned."""
        c = self.config
        return {"pivot": self.pivot, "max_steps": str(c.steps), "lr": str(c.lr), "lpips_stop": str(c.lpips_stop),
                "locality": str(c.locality).lower()}

    def name_tag(self) -> str:
        """For output names: `_tuned`, plus each setting that differs from PTI's recipe (`_tuned-s100-lr0.01`)."""
        c, d = self.config, TuningConfig()
        return tuning_tag(c.steps if c.steps != d.steps else None, c.lr if c.lr != d.lr else None,
                          c.lpips_stop if c.lpips_stop != d.lpips_stop else None, c.locality,
                          self.pivot if self.pivot != "encoder" else None)

    def fingerprint(self, generator: nn.Module) -> str:
        """The generator's fingerprint (computed once per generator object)."""
        key = id(generator)
        if key not in self._fingerprints:
            self._fingerprints[key] = fingerprint(generator)
        return self._fingerprints[key]

    def tune_face(self, generator: nn.Module, code: Tensor, target: np.ndarray, w_avg: Tensor | None = None,
                  label: str = "face") -> TunedFace:
        """code [n_styles, dim] from the encoder; target uint8 [size, size, 3] (the aligned face at full size)."""
        device = next(generator.parameters()).device
        lpips = self.perceptual(device)
        x = target_tensor(target, device)
        pivot = code[None].to(device)
        if self.pivot == "project":
            bar = self.progress(f"{label} (W projection)", self.projection.steps) if self.progress else None
            pivot = project_w(generator, x, lpips, self.projection,
                              None if bar is None else lambda step, distance: bar(step, distance, 0.0))
            if bar is not None:
                bar.close(None)
        progress = self.progress(label, self.config.steps) if self.progress else None
        result = tune(generator, pivot, x, lpips, self.config, w_avg, progress)
        if progress is not None:
            progress.close(result)
        return TunedFace(pivot[0], result.weights, result)

    def tune_faces(self, generator: nn.Module, targets: Sequence[np.ndarray], encoded: Encoded,
                   w_avg: Tensor | None = None, labels: Sequence[str] | None = None) -> tuple[Encoded, list[TunedFace]]:
        """Every face in turn: Encoded with the pivots as codes and the tuned weights, and the per-face results."""
        labels = labels or [f"face {i}" for i in range(len(targets))]
        faces = [self.tune_face(generator, code, target, w_avg, label)
                 for code, target, label in zip(encoded.codes, targets, labels)]
        codes = torch.stack([f.pivot.to(encoded.codes.device) for f in faces]) if faces else encoded.codes
        return Encoded(codes, [f.weights for f in faces], encoded.steps), faces


def full_size_target(pixels: np.ndarray, quad: np.ndarray | None, size: int) -> np.ndarray:
    """The tuning target: the FFHQ quad of the photo warped to `size` px (the generator's), or, for a photo that
    is an aligned crop already (quad None), the photo resized to `size`."""
    if quad is not None:
        from stylecli.faces import align_crop

        return align_crop(pixels, quad, output_size=size)
    if pixels.shape[:2] == (size, size):
        return pixels
    from PIL import Image

    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS))
