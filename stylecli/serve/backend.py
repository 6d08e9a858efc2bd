"""The one seam between the browser editor and the models: every model call the page makes goes through here.

The stages are the pipeline's (read, detect, align, encode, edit, synthesize, paste back); the editor never
touches an encoder, a generator or dlib itself.
"""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.editing.base import Edit


class Backend:
    """A loaded model (and, on first use, the face detector), shared by every request of one server."""

    def __init__(self, inverter: Any, model_args: list[str], domain: str | None = None):
        self.inverter = inverter
        self.model_args = model_args  # how the CLI names this model: ["--checkpoint", path] or ["--model", name]
        self.domain = domain
        self._aligner = None
        self._lock = threading.RLock()  # one model call at a time, whatever the web server's threads do

    @classmethod
    def load(cls, checkpoint: Path | None = None, model: str = "e4e_ffhq", device: str = "auto") -> Backend:
        from stylecli import weights
        from stylecli.loader import load_model
        from stylecli.pipeline import Inverter, resolve_device

        dev = resolve_device(device)
        if checkpoint is None:
            entry = weights.get_entry(model)
            if entry.kind != "checkpoint":
                raise weights.WeightsError(f"--model {model}: is a {entry.kind or 'data'} file, not an encoder "
                                           "checkpoint")
            loaded, args = load_model(weights.resolve(model)), ([] if model == "e4e_ffhq" else ["--model", model])
        else:
            loaded, args = load_model(checkpoint), ["--checkpoint", str(checkpoint)]
        kind = loaded.opts.get("dataset_type")
        domain = kind.removesuffix("_encode") if isinstance(kind, str) and kind else None
        return cls(Inverter.from_loaded(loaded, dev), args, domain)

    # -- what the model is ----------------------------------------------------------------------------------

    @property
    def n_styles(self) -> int:
        return self.inverter.n_styles

    @property
    def style_dim(self) -> int:
        return self.inverter.model.decoder.style_dim

    @property
    def generator(self):
        return self.inverter.model.decoder

    @property
    def encoders(self) -> list[str]:
        """The encoders a user can choose between (ReStyle, HyperStyle and tuning join here when available)."""
        return ["e4e"]

    @property
    def blends(self) -> list[str]:
        """Paste-back blends: the feathered mask, and Poisson blending where paste_back offers it."""
        from stylecli.faces import paste_back

        return ["feather", "seamless"] if "blend" in inspect.signature(paste_back).parameters else ["feather"]

    # -- the stages -----------------------------------------------------------------------------------------

    def read(self, path: Path, max_pixels: int) -> tuple[np.ndarray, list[str]]:
        from stylecli.images import read_image

        loaded = read_image(path, max_pixels)
        return loaded.pixels, loaded.notes

    def detect(self, pixels: np.ndarray) -> list:
        with self._lock:
            if self._aligner is None:
                from stylecli.faces import FaceAligner

                self._aligner = FaceAligner()
            return self._aligner.detect(pixels)

    def align(self, pixels: np.ndarray, face) -> np.ndarray:
        from stylecli.faces import align_crop

        return align_crop(pixels, face.quad)

    def encode(self, crop: np.ndarray, encoder: str = "e4e") -> tuple[np.ndarray, Any]:
        """The W+ code [n_styles, style_dim] of one aligned crop, and the generator weights the encoder adapted
        to this photo (None: the shared generator)."""
        with self._lock:
            return self.inverter.encode([crop])[0].float().cpu().numpy(), None

    def resolve(self, spec: str) -> Edit:
        from stylecli.editing import resolve_edit

        return resolve_edit(spec, self.n_styles, self.generator)

    def apply(self, code: np.ndarray, edit: Edit, strength: float) -> np.ndarray:
        import torch

        return edit.apply(torch.from_numpy(code)[None], strength)[0].numpy()

    def synthesize(self, codes: np.ndarray, weights: Any = None) -> np.ndarray:
        """W+ codes [B, n_styles, style_dim] -> uint8 images [B, size, size, 3], with one photo's generator
        weights when given."""
        with self._lock:
            return self.inverter.synthesize(codes)

    def paste(self, photo: np.ndarray, face_image: np.ndarray, quad: np.ndarray, blend: str = "feather"):
        from stylecli.faces import paste_back

        if blend == "feather":
            return paste_back(photo, face_image, quad)
        return paste_back(photo, face_image, quad, blend=blend)

    def write_sidecar(self, dest: Path, photo_name: str, size: tuple[int, int], index: int, face) -> Path:
        """The alignment sidecar `edit NAME.npy --paste-back` reads; the photo is named as uploaded, so it is
        found when it sits beside the downloaded files."""
        from stylecli.faces import write_sidecar

        return write_sidecar(dest, Path(photo_name), size, index, face, overwrite=True)
