"""The back half of every job: codes x variants, with per-photo generator weights -> images, pasted back.

`render_variants` applies every variant's edits to every face's code and renders them all in one generator
batch (each face through its own weights: HyperStyle's offsets or tuned weights), the reconstructions too when
asked; `paste_variants` puts each variant's faces back into their photo. The batch jobs, the FaceEditor, the
browser editor, `directions preview` and `mix` render through here, so an edit looks the same from every front
end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stylecli.encoders.base import Encoded

if TYPE_CHECKING:
    from stylecli.pipeline.results import Variant


@dataclass
class Rendered:
    """Per face: its code, its edited codes and images, one per variant, and its reconstruction when asked for."""

    base: np.ndarray  # float32 [faces, n_styles, dim]: the codes before the edits
    codes: np.ndarray  # float32 [faces, variants, n_styles, dim]
    images: np.ndarray  # uint8 [faces, variants, size, size, 3]
    reconstructions: np.ndarray | None  # uint8 [faces, size, size, 3]
    weights: list[Any] | None  # each face's generator weights (None: the shared generator for all)

    def face_weights(self, i: int) -> Any:
        return None if self.weights is None else self.weights[i]


def render_variants(editor: Any, encoded: Encoded, variants: Sequence[Variant],
                    reconstruct: bool = False) -> Rendered:
    """Every variant of every face (and each face's reconstruction with `reconstruct`), in one generator batch:
    the edited codes first, face by face, then the reconstructions."""
    import torch

    codes, weights = encoded.codes, encoded.weights
    n, v = len(codes), len(variants)
    edited = editor.edit(codes, variants)  # [n, v, styles, dim]
    batch = edited.flatten(0, 1)
    batch_weights = None if weights is None else [w for w in weights for _ in range(v)]
    if reconstruct:
        batch = torch.cat([batch, codes])
        batch_weights = None if weights is None else batch_weights + list(weights)
    images = editor.synthesize(batch, batch_weights)
    size = images.shape[1:] if len(images) else (editor.size, editor.size, 3)
    return Rendered(codes.cpu().numpy(), edited.cpu().numpy(), images[: n * v].reshape(n, v, *size),
                    images[n * v :] if reconstruct else None, None if weights is None else list(weights))


def paste_variants(editor: Any, photo: Any, variants: Sequence[Variant], images: np.ndarray,
                   quads: Sequence[np.ndarray], blend: str = "feather") -> dict[str, np.ndarray]:
    """Variant name -> the photo with each face's image of that variant pasted back (images: [faces, variants,
    H, W, 3], in the order of `quads`)."""
    return {variant.name: editor.paste_back(photo, [images[i, k] for i in range(len(quads))], quads, blend)
            for k, variant in enumerate(variants)}


def preview(editor: Any, encoded: Encoded, names: Sequence[str], strength: float | None = None,
            progress: Any = None) -> list[Any]:
    """`directions preview`: each named direction at -S, 0 and +S on one face's code, rendered as `edit` renders
    it (through the face's own generator weights); one editing.preview.PreviewRow per name."""
    from stylecli.editing.preview import preview_rows
    from stylecli.pipeline.results import Variant

    def render(edit: Any, strengths: list[float]) -> np.ndarray:
        variants = [Variant(f"{s:+g}", ((edit, s),)) for s in strengths]
        return render_variants(editor, encoded, variants).images[0]

    return preview_rows(names, editor.resolve_edit, render, strength, progress)
