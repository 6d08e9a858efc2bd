"""stylecli: invert and edit real photos with StyleGAN2 and the e4e encoder.

    from stylecli import FaceEditor
    editor = FaceEditor.from_pretrained("e4e_ffhq")          # or FaceEditor.from_checkpoint("e4e.pt")
    photo = editor(["photo.jpg"], edits=[("age", 3)], paste_back=True)[0]
    photo.faces[0].code, photo.faces[0].edits[0].image, photo.pasted["age+3"]

Heavy modules load on first use, so importing stylecli (and `stylecli --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "FaceEditor": "stylecli.pipeline.editor",
    "PhotoResult": "stylecli.pipeline.results",
    "FaceResult": "stylecli.pipeline.results",
    "EditedFace": "stylecli.pipeline.results",
    "Variant": "stylecli.pipeline.results",
    "Encoded": "stylecli.encoders.base",
    "Encoder": "stylecli.encoders.base",
    "GeneratorWeights": "stylecli.encoders.base",
    "load_model": "stylecli.encoders.loader",
    "load_generator": "stylecli.encoders.loader",
    "save_checkpoint": "stylecli.encoders.formats.e4e",
    "read_image": "stylecli.files.images",
    "StyleCliError": "stylecli.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stylecli' has no attribute {name!r}")
