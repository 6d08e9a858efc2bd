"""Loading the loss and metric networks (LPIPS, ArcFace, MoCo) from their files; the modules are in models/."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from stylecli.errors import StyleCliError, missing_package
from stylecli.models.arcface import ArcFace
from stylecli.models.irse import IRSE50_FIRST_BLOCKS
from stylecli.models.lpips import LPIPSDistance


class MetricNetError(StyleCliError):
    """A loss or metric network's file that is not what it should be: set-up no input can fix, exit 2."""

    exit_code = 2


def lpips_model(device: torch.device, path: Path | None = None) -> LPIPSDistance:
    """The `lpips` package's AlexNet LPIPS: its v0.1 linear heads (shipped in the package) on torchvision's
    ImageNet AlexNet read from `path` (default: the registry's lpips_alexnet, downloaded once and verified), never
    through torchvision's own download (which prints on stdout and warns)."""
    try:
        import lpips
    except ImportError:
        raise missing_package("LPIPS needs the lpips package", "eval") from None
    from stylecli.files.checkpoints import read_checkpoint

    if path is None:
        from stylecli.registry import weights

        path = weights.resolve("lpips_alexnet")
    features = {k.removeprefix("features."): v for k, v in read_checkpoint(path).items() if k.startswith("features.")}
    with warnings.catch_warnings():  # torchvision's `pretrained` deprecation, said for pretrained=False too
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    with torch.no_grad():
        for slice_ in (net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4, net.net.slice5):
            for index, module in slice_.named_children():
                for name, param in module.named_parameters(recurse=False):
                    value = features.get(f"{index}.{name}")
                    if value is None or value.shape != param.shape:
                        raise MetricNetError(f"{path}: not torchvision's AlexNet (features.{index}.{name} is "
                                             f"{'missing' if value is None else 'of another shape'})")
                    param.copy_(value)
    return LPIPSDistance(net).to(device).eval().requires_grad_(False)


def arcface_model(device: torch.device, path: Path | None = None) -> ArcFace:
    """ArcFace IR-SE50 from `model_ir_se50.pth` (registry: arcface_ir_se50), loaded strictly and safely."""
    from stylecli.files.checkpoints import read_checkpoint

    if path is None:
        from stylecli.registry import weights

        path = weights.resolve("arcface_ir_se50")
    state = read_checkpoint(path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        widths = tuple(int(state[f"body.{b}.res_layer.1.weight"].shape[0]) for b in IRSE50_FIRST_BLOCKS)
        net = ArcFace(widths, int(state["output_layer.3.weight"].shape[0]))
        net.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise MetricNetError(f"{path}: not an ArcFace IR-SE50 state dict ({str(exc).splitlines()[0][:120]})") from None
    return net.to(device).eval()


def moco_model(device: torch.device, path: Path | None = None) -> torch.nn.Module:
    """MoCo-v2 ResNet-50 features (registry: moco_v2_800ep): the query encoder's weights without its classifier."""
    from stylecli.files.checkpoints import read_checkpoint
    from stylecli.models.moco import moco_resnet50

    if path is None:
        from stylecli.registry import weights

        path = weights.resolve("moco_v2_800ep")
    state = read_checkpoint(path)
    state = state.get("state_dict", state)
    prefix = "module.encoder_q."
    backbone = {k[len(prefix):]: v for k, v in state.items()
                if k.startswith(prefix) and not k[len(prefix):].startswith("fc.")}
    net = moco_resnet50()
    missing = [k for k in net.state_dict() if k not in backbone]
    if missing:
        raise MetricNetError(f"{path}: not a MoCo ResNet-50 checkpoint (missing {missing[0]})")
    net.load_state_dict(backbone, strict=True)
    return net.to(device).eval().requires_grad_(False)
