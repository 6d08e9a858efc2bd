"""stylecli: invert and edit real photos with StyleGAN2 and the e4e encoder.

    from stylecli import Inverter
    inv = Inverter.from_checkpoint("e4e_ffhq_encode.pt")
    result = inv.invert([pixels])[0]   # pixels: uint8 [H, W, 3] aligned face

Heavy modules load on first use, so importing stylecli (and `stylecli --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Inverter": "stylecli.pipeline",
    "Inversion": "stylecli.pipeline",
    "load_model": "stylecli.loader",
    "load_generator": "stylecli.loader",
    "save_checkpoint": "stylecli.checkpoint",
    "read_image": "stylecli.images",
    "StyleCliError": "stylecli.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stylecli' has no attribute {name!r}")
