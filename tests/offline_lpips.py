"""A stand-in for LPIPS in the browser editor's tuning tests: the mean absolute pixel difference of each image pair.

The real LPIPS needs torchvision's AlexNet (a download, and seconds to import in every process); these tests are
about what the editor does with tuning, which `tests/test_tuning.py` and `tests/test_cli_tune.py` check with the
real LPIPS heads. The server of the browser test loads it through its sitecustomize.
"""

from __future__ import annotations

from torch import Tensor


def pixel_distance(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().mean(dim=(1, 2, 3))


def stand_in_lpips(device) -> object:
    """What `stylecli.registry.networks.lpips_model(device)` returns: a distance between image batches."""
    return pixel_distance
