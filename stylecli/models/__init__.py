"""Pure PyTorch modules: no file I/O, no CUDA extensions."""

from stylecli.models.e4e import E4E, INFERENCE_STAGE, StyleEncoder, build_e4e
from stylecli.models.stylegan2 import Generator

__all__ = ["E4E", "Generator", "INFERENCE_STAGE", "StyleEncoder", "build_e4e"]
