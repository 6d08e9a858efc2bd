"""IR-SE ResNet backbone (ArcFace's IR-SE50 layout), as used by pSp and e4e encoders."""

from __future__ import annotations

from torch import Tensor, nn

# (units, width) of the four stages of IR-SE50; the first unit of each stage has stride 2.
IRSE50_UNITS = (3, 4, 14, 3)
IRSE50_WIDTHS = (64, 128, 256, 512)


def first_blocks(units: tuple[int, ...]) -> tuple[int, ...]:
    """The index in the body of each stage's first unit (whose output width is the stage's): (0, 3, 7, 21)."""
    return tuple(sum(units[:i]) for i in range(len(units)))


IRSE50_FIRST_BLOCKS = first_blocks(IRSE50_UNITS)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True)).relu()).sigmoid()
        return x * gate


class BottleneckIRSE(nn.Module):
    """BN -> 3x3 conv -> PReLU -> strided 3x3 conv -> BN -> SE, plus a (projected) shortcut."""

    def __init__(self, in_ch: int, depth: int, stride: int):
        super().__init__()
        self.stride = stride
        if in_ch != depth:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        else:
            self.shortcut_layer = None
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut_layer is None:
            shortcut = x[:, :, :: self.stride, :: self.stride]  # a 1x1 max-pool with stride
        else:
            shortcut = self.shortcut_layer(x)
        return self.res_layer(x) + shortcut


def irse_body(widths: tuple[int, ...] = IRSE50_WIDTHS, units: tuple[int, ...] = IRSE50_UNITS) -> nn.Sequential:
    blocks: list[nn.Module] = []
    in_ch = widths[0]
    for depth, n in zip(widths, units):
        blocks.append(BottleneckIRSE(in_ch, depth, 2))
        blocks.extend(BottleneckIRSE(depth, depth, 1) for _ in range(n - 1))
        in_ch = depth
    return nn.Sequential(*blocks)


def irse_input_layer(width: int = IRSE50_WIDTHS[0], in_ch: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))
