"""The one seam between the browser editor and the models: every model call the page makes goes through here.

The work is the pipeline's (its sources read and align a photo's faces, its render edits and renders them; tuning
and paste-back are FaceEditor stages); the editor never touches an encoder, a generator or dlib itself.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from stylecli.editing.base import Edit

if TYPE_CHECKING:
    from stylecli.tuning.stage import ProgressFactory, Tuner


class Backend:
    """A loaded FaceEditor (the model, and on first use the face detector), shared by every request of one
    server."""

    def __init__(self, editor: Any, model_args: list[str], name: str = DEFAULT_MODEL):
        self.editor = editor
        self.model_args = model_args  # how the CLI names this model: ["--checkpoint", path] or ["--model", name]
        self.name = name  # the registry name, or the checkpoint's path as given
        self._lock = threading.RLock()  # one model call at a time, whatever the web server's threads do

    @classmethod
    def load(cls, checkpoint: Path | None = None, model: str = DEFAULT_MODEL, device: str = "auto",
             max_pixels: int = DEFAULT_MAX_PIXELS) -> Backend:
        from stylecli.pipeline.editor import FaceEditor

        if checkpoint is None:
            editor = FaceEditor.from_pretrained(model, device, max_pixels=max_pixels)
            return cls(editor, [] if model == DEFAULT_MODEL else ["--model", model], model)
        return cls(FaceEditor.from_checkpoint(checkpoint, device, max_pixels=max_pixels),
                   ["--checkpoint", str(checkpoint)], str(checkpoint))

    # -- what the model is ----------------------------------------------------------------------------------

    @property
    def n_styles(self) -> int:
        return self.editor.n_styles

    @property
    def style_dim(self) -> int:
        return self.editor.style_dim

    @property
    def domain(self) -> str | None:
        return self.editor.domain

    @property
    def max_pixels(self) -> int | None:
        """The largest photo it reads (--max-pixels)."""
        return self.editor.max_pixels

    @property
    def kind(self) -> str:
        """Its encoder: e4e, pSp, ReStyle or HyperStyle."""
        from stylecli.encoders.base import capabilities

        return capabilities(self.editor.encoder).label

    @property
    def tunable(self) -> bool:
        """Whether pivotal tuning may start from its codes (`--tune` refuses HyperStyle, which adapts the
        generator to each photo itself)."""
        from stylecli.encoders.base import capabilities

        return capabilities(self.editor.encoder).tunable

    @property
    def blends(self) -> list[str]:
        """Paste-back blends: the feathered mask, and Poisson blending where paste_back offers it."""
        from stylecli.faces import paste_back

        return ["feather", "seamless"] if "blend" in inspect.signature(paste_back).parameters else ["feather"]

    # -- the stages -----------------------------------------------------------------------------------------

    def open(self, path: Path, no_face: str):
        """A photo's faces through the pipeline's sources (pipeline.sources.Source): read outside the model lock,
        then every face detected and aligned. no_face: the message when there is none."""
        from stylecli.pipeline.sources import open_source

        photo = self.editor.read(Path(path))
        with self._lock:
            return open_source(self.editor, photo, faces="all", latents=False, no_face=no_face)

    def encode(self, face) -> tuple[np.ndarray, Any]:
        """The W+ code [n_styles, style_dim] of one face (a pipeline.sources.SourceFace), and the generator weights
        the encoder adapted to this photo (None: the shared generator)."""
        from stylecli.pipeline.sources import encode_faces

        with self._lock:
            encoded = encode_faces(self.editor, [face])
        weights = encoded.weights[0] if encoded.weights is not None else None
        return encoded.codes[0].float().cpu().numpy(), weights

    def tune(self, pixels: np.ndarray, face, code: np.ndarray, tuner: Tuner, label: str,
             progress: ProgressFactory | None = None) -> tuple[np.ndarray, Any]:
        """Pivotal tuning of one face of a photo (FaceEditor.tune): the pivot (`code`) and the generator weights
        that make it render the face at the generator's resolution. progress: follows the steps."""
        import torch

        from stylecli.encoders.base import Encoded

        with self._lock:
            tuner.perceptual(self.editor.device)  # loaded on first use, then kept by the shared tuner
            target = self.editor.target(pixels, face)
            encoded = Encoded(torch.from_numpy(code)[None].to(self.editor.device))
            tuned = self.editor.tune([target], encoded, replace(tuner, progress=progress), [label])
        return tuned.codes[0].float().cpu().numpy(), tuned.weights[0]

    def resolve(self, spec: str) -> Edit:
        """A direction for this model (shape and domain checked)."""
        return self.editor.resolve_edit(spec)

    def condition(self, edits: list[Edit], keep: list[Edit | str]) -> tuple[list[Edit], list[str]]:
        """The edits made to move orthogonally to the kept directions (`--keep`), with one note per edit (the
        cosine between its original and its projected direction); unchanged when none is kept."""
        if not keep:
            return edits, []
        steps, notes = self.editor.keep([(e, None) for e in edits], keep)
        return [e for e, _ in steps], notes

    def apply(self, code: np.ndarray, edit: Edit, strength: float) -> np.ndarray:
        import torch

        return edit.apply(torch.from_numpy(code)[None], strength)[0].numpy()

    def render(self, code: np.ndarray, weights: Any, steps: list[tuple[Edit, float]], name: str
               ) -> tuple[np.ndarray, np.ndarray]:
        """One face's code edited by `steps` (applied in order, as repeated --direction flags are) and its image,
        through the pipeline's render (the face's own generator weights included): what `stylecli edit` makes."""
        import torch

        from stylecli.encoders.base import Encoded
        from stylecli.pipeline.render import render_variants
        from stylecli.pipeline.results import Variant

        with self._lock:
            codes = torch.from_numpy(code)[None].to(self.editor.device)
            encoded = Encoded(codes, None if weights is None else [weights])
            out = render_variants(self.editor, encoded, [Variant(name, tuple(steps))])
        return out.codes[0, 0], out.images[0, 0]

    def paste(self, photo: np.ndarray, face_image: np.ndarray, quad: np.ndarray, blend: str = "feather"):
        return self.editor.paste_back(photo, [face_image], [quad], blend)

    # -- the files a download holds -------------------------------------------------------------------------

    def write_sidecar(self, dest: Path, photo_name: str, size: tuple[int, int], index: int, face) -> Path:
        """The alignment sidecar `edit NAME.npy --paste-back` reads. The photo is recorded by the name it was
        uploaded with alone (no path of this server), so the CLI finds it when it sits beside the downloads."""
        from stylecli.faces import write_sidecar

        return write_sidecar(dest, Path(photo_name), size, index, face, overwrite=True, name_only=True)

    def write_weights(self, latent: Path, code: np.ndarray, weights: Any, tuner: Tuner | None) -> list[Path]:
        """What `edit LATENT` needs beside a latent to render it as the page did: the tuned generator
        (NAME.tuned.safetensors, tied to this code) or HyperStyle's offsets (NAME.hyperstyle.npz); nothing when
        it renders with the shared generator."""
        from stylecli.photo_weights import write_photo_weights

        with self._lock:
            tuning, base = (tuner.metadata(), tuner.fingerprint(self.editor.generator)) if tuner else (None, None)
            written = write_photo_weights(self.editor, latent, code, weights, tuning, base, overwrite=True)
        return [] if written is None else [written]
