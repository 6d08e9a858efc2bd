import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from stylecli.models.ops import conv_transpose3x3_s2, fir_kernel, fused_leaky_relu, upfirdn2d


def reference_upfirdn(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """Independent version: explicit zero insertion, numpy padding/cropping, scipy's true convolution."""
    h, w = x.shape
    z = np.zeros((h * up, w * up))
    z[::up, ::up] = x
    p0, p1 = pad
    z = np.pad(z, ((max(p0, 0), max(p1, 0)),) * 2)
    z = z[max(-p0, 0) : z.shape[0] - max(-p1, 0), max(-p0, 0) : z.shape[1] - max(-p1, 0)]
    out = convolve2d(z, k, mode="valid")
    return out[::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad",
    [(1, 1, (1, 1)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 1, (1, 1)), (1, 1, (-1, 2)), (2, 1, (0, 3)), (2, 1, (-1, 2))],
)
def test_upfirdn2d_matches_explicit_convolution(up, down, pad):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 7, generator=gen)
    k = torch.rand(4, 4, generator=gen)  # asymmetric: checks the flip too
    out = upfirdn2d(x, k, up=up, down=down, pad=pad)
    for n in range(2):
        for c in range(3):
            ref = reference_upfirdn(x[n, c].numpy().astype(np.float64), k.numpy().astype(np.float64), up, down, pad)
            np.testing.assert_allclose(out[n, c].numpy(), ref, atol=1e-5)


def test_fir_kernel_is_normalized_outer_product():
    k = fir_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4)
    assert torch.isclose(k.sum(), torch.tensor(1.0))
    assert torch.allclose(k[0], torch.tensor([1, 3, 3, 1]) / 64)


def test_fused_leaky_relu():
    x = torch.tensor([[-2.0, 3.0]])
    b = torch.tensor([1.0, -1.0])
    out = fused_leaky_relu(x, b)
    expected = torch.tensor([[-1.0 * 0.2, 2.0]]) * 2**0.5
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("h,w", [(5, 5), (4, 7)])
def test_per_parity_transposed_convolution_matches_the_library(h, w):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, h, w, generator=gen)
    weight = torch.randn(5, 6, 3, 3, generator=gen)  # [out, in, k, k], asymmetric taps
    x.requires_grad_(True)
    out = conv_transpose3x3_s2(x, weight)
    expected = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    (grad,) = torch.autograd.grad(out.square().sum(), x)  # usable in training too
    torch.testing.assert_close(grad, torch.autograd.grad(expected.square().sum(), x)[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("up,pad", [(1, (1, 1)), (2, (2, 1)), (2, (0, 3))])
def test_upfirdn2d_bias_is_added_per_channel(up, pad):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 6, 6, generator=gen)
    k = torch.rand(4, 4, generator=gen)
    bias = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(
        upfirdn2d(x, k, up=up, pad=pad, bias=bias), upfirdn2d(x, k, up=up, pad=pad) + bias.view(1, 3, 1, 1)
    )
