"""MoCo-v2 ResNet-50 features: e4e's similarity network for domains other than faces."""

from __future__ import annotations

from torch import nn


def moco_resnet50() -> nn.Module:
    """torchvision's ResNet-50 with its classifier replaced by the identity: image -> 2048-d pooled features.
    Parameter names match torchvision's, so MoCo's `module.encoder_q.*` tensors load once the prefix is cut."""
    try:
        import torchvision
    except ImportError:
        from stylecli.errors import missing_package

        raise missing_package("the MoCo similarity loss needs torchvision", "eval") from None
    net = torchvision.models.resnet50()
    net.fc = nn.Identity()
    return net
