"""ResNet34 pieces with torchvision's parameter names, as ReStyle's ResNet encoders and HyperStyle's hypernetwork
use them: a 7x7 stride-2 stem with a PReLU (no max-pool), then the four stages of basic blocks."""

from __future__ import annotations

from torch import Tensor, nn

RESNET34_UNITS = (3, 4, 6, 3)
RESNET34_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the (projected) input, then ReLU (torchvision's layout)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def resnet_body(widths: tuple[int, ...] = RESNET34_WIDTHS, units: tuple[int, ...] = RESNET34_UNITS) -> nn.Sequential:
    """The four stages as one flat Sequential (`body.0` .. `body.15`); stages 2-4 start with stride 2."""
    blocks: list[nn.Module] = []
    in_ch = widths[0]
    for stage, (width, n) in enumerate(zip(widths, units)):
        blocks.append(BasicBlock(in_ch, width, 1 if stage == 0 else 2))
        blocks.extend(BasicBlock(width, width, 1) for _ in range(n - 1))
        in_ch = width
    return nn.Sequential(*blocks)


class ResNetStem(nn.Module):
    """7x7 stride-2 convolution, BN, PReLU, then the body: 256 px in, a 16x16 map of widths[-1] channels out.

    Parameter names `conv1`, `bn1`, `relu`, `body.*` sit directly on the module that owns the stem in the official
    files, so the owners inherit from this class instead of holding it.
    """

    def __init__(self, in_ch: int, widths: tuple[int, ...] = RESNET34_WIDTHS):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.PReLU(widths[0])
        self.body = resnet_body(widths)

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.relu(self.bn1(self.conv1(x))))
