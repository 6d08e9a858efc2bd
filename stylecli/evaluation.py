"""`stylecli evaluate`: distortion and editability of one or several encoders on a folder of aligned faces."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylecli.errors import StyleCliError
from stylecli.metrics import METRICS, ArcFace, Stat, identity_similarity, l2, lec_distances, msssim, pool256
from stylecli.pipeline import FaceEditor, preprocess


class EvaluationError(StyleCliError):
    pass


def parse_metrics(spec: str) -> list[str]:
    names = [m.strip().lower() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise EvaluationError(f"--metrics {spec!r}: choose from {','.join(METRICS)}")
    return names


def parse_lec_edit(spec: str) -> tuple[str, float]:
    """'age' -> ('age', 3.0); 'sefa:0:5' -> ('sefa:0', 5.0); 'smile:-2' -> ('smile', -2.0)."""
    head, sep, tail = spec.rpartition(":")
    if sep:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return spec, 3.0


def lpips_model(device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The `lpips` package's AlexNet LPIPS. Its AlexNet weights come through torchvision's cache (TORCH_HOME)."""
    try:
        import lpips
    except ImportError:
        raise EvaluationError("LPIPS needs the lpips package: pip install 'stylecli[eval]'") from None
    try:
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval().requires_grad_(False)
    except Exception as exc:
        raise EvaluationError(
            "LPIPS could not load torchvision's AlexNet weights (alexnet-owt-7be5be79.pth): "
            f"{str(exc).splitlines()[0][:120]}; offline, place the file in $TORCH_HOME/hub/checkpoints/"
        ) from None
    return lambda a, b: net(a, b, normalize=False).flatten()


def arcface_model(device: torch.device, path: Path | None = None) -> ArcFace:
    """ArcFace IR-SE50 from `model_ir_se50.pth` (registry: arcface_ir_se50), loaded strictly and safely."""
    from stylecli.checkpoint import read_checkpoint

    if path is None:
        from stylecli import weights

        path = weights.resolve("arcface_ir_se50")
    state = read_checkpoint(path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        widths = tuple(int(state[f"body.{b}.res_layer.1.weight"].shape[0]) for b in (0, 3, 7, 21))
        net = ArcFace(widths, int(state["output_layer.3.weight"].shape[0]))
        net.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise EvaluationError(f"{path}: not an ArcFace IR-SE50 state dict ({str(exc).splitlines()[0][:120]})") from None
    return net.to(device).eval()


def moco_model(device: torch.device, path: Path | None = None) -> torch.nn.Module:
    """MoCo-v2 ResNet-50 features (registry: moco_v2_800ep), the e4e similarity network for non-face domains:
    torchvision's ResNet-50 with the query encoder's weights, without its classifier (2048-d output)."""
    import torchvision

    from stylecli.checkpoint import read_checkpoint

    if path is None:
        from stylecli import weights

        path = weights.resolve("moco_v2_800ep")
    state = read_checkpoint(path)
    state = state.get("state_dict", state)
    prefix = "module.encoder_q."
    backbone = {k[len(prefix):]: v for k, v in state.items()
                if k.startswith(prefix) and not k[len(prefix):].startswith("fc.")}
    net = torchvision.models.resnet50()
    missing, _ = net.load_state_dict(backbone, strict=False)
    if [k for k in missing if not k.startswith("fc.")]:
        raise EvaluationError(f"{path}: not a MoCo ResNet-50 checkpoint (missing {missing[0]})")
    return torch.nn.Sequential(*list(net.children())[:-1]).to(device).eval().requires_grad_(False)


class _Codec:
    """encode / synthesize on tensors, as the metrics take them."""

    def __init__(self, editor: FaceEditor):
        self.editor = editor

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.editor.encoder.encode(x).codes

    def synthesize(self, codes: torch.Tensor) -> torch.Tensor:
        return self.editor.render(codes)


@dataclass
class Evaluation:
    checkpoint: str
    stats: dict[str, Stat] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    encode_s: float = 0.0
    synthesize_s: float = 0.0
    images: int = 0

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "metrics": {k: s.summary(trimmed=(k == "lec")) for k, s in self.stats.items()},
            "speed": {"encode_s_per_image": self.encode_s / max(self.images, 1),
                      "synthesize_s_per_image": self.synthesize_s / max(self.images, 1)},
        }
        if per_image:
            out["per_image"] = self.per_image
        return out


def evaluate(
    inverter: FaceEditor,
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
    """Run every metric over (name, uint8 image) pairs with one model."""
    result = Evaluation(name, {m: Stat() for m in metrics})
    model = _Codec(inverter)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = torch.stack([preprocess(px) for _, px in chunk]).to(inverter.device)
        with torch.inference_mode():
            t0 = time.perf_counter()
            codes = model.encode(x)
            t1 = time.perf_counter()
            recon = pool256(model.synthesize(codes))
            t2 = time.perf_counter()
            values: dict[str, torch.Tensor] = {}
            if "l2" in metrics:
                values["l2"] = l2(x, recon)
            if "lpips" in metrics:
                values["lpips"] = lpips_fn(x, recon.clamp(-1, 1))
            if "msssim" in metrics:
                values["msssim"] = msssim(x, recon)
            if "id" in metrics:
                values["id"] = identity_similarity(arcface, x, recon.clamp(-1, 1))
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
