"""GANSpace edits: move chosen layers to a target coordinate along a PCA component of W."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from stylecli.editing.base import Edit, EditError

# name -> (component, first layer, end layer (exclusive), strength). The first five per file are e4e's; the rest
# are the StyleGAN2 presets of GANSpace's notebooks/figure_teaser.ipynb (some renamed: frizzy_hair is its
# 'afro', scary_eyes 'crazy_eyes', elderly_woman 'old_woman', boyishness 'young_boy'; redness, add_grass and
# blocky_shape are its cars edits, the same values as e4e's color, grass and cube).
NAMED_EDITS: dict[str, dict[str, tuple[int, int, int, float]]] = {
    "ffhq_pca": {
        "eye_openness": (54, 7, 8, 20),
        "smile": (46, 4, 5, -20),
        "trimmed_beard": (58, 7, 9, 20),
        "white_hair": (57, 7, 10, -24),
        "lipstick": (34, 10, 11, 20),
        "frizzy_hair": (31, 2, 6, 20),
        "background_blur": (49, 6, 9, 20),
        "bald": (21, 2, 5, 20),
        "big_smile": (19, 4, 5, 20),
        "caricature_smile": (26, 3, 8, 13),
        "scary_eyes": (33, 6, 8, 20),
        "curly_hair": (47, 3, 6, 20),
        "dark_hair": (16, 8, 9, 20),
        "disgusted": (43, 6, 8, -30),
        "displeased": (36, 4, 7, 20),
        "eye_wrinkles": (28, 6, 8, 20),
        "eyebrow_thickness": (37, 8, 9, 20),
        "face_roundness": (37, 0, 5, 20),
        "fearful_eyes": (54, 4, 10, 20),
        "hairline": (21, 4, 5, -20),
        "head_angle_up": (11, 1, 4, 20),
        "huge_grin": (28, 4, 6, 20),
        "in_awe": (23, 3, 6, -15),
        "wide_smile": (23, 3, 6, 20),
        "large_jaw": (22, 3, 6, 20),
        "light_lr": (15, 8, 9, 10),
        "lipstick_and_age": (34, 6, 11, 20),
        "nose_length": (51, 4, 5, -20),
        "elderly_woman": (34, 6, 7, 20),
        "overexposed": (27, 8, 18, 15),
        "screaming": (35, 3, 7, -15),
        "short_face": (32, 2, 6, -20),
        "show_front_teeth": (59, 4, 5, 40),
        "straight_bowl_cut": (20, 4, 5, -20),
        "sunlight_in_face": (10, 8, 9, 10),
        "wrinkles": (20, 6, 7, -18),
        "boyishness": (8, 2, 5, 20),
    },
    "cars_pca": {
        "viewpoint_1": (0, 0, 5, 2),
        "viewpoint_2": (0, 0, 5, -2),
        "cube": (16, 3, 6, 25),
        "color": (22, 9, 11, -8),
        "grass": (41, 9, 11, -18),
        "redness": (22, 9, 11, -8),
        "add_grass": (41, 9, 11, -18),
        "blocky_shape": (16, 3, 6, 25),
    },
}


@dataclass
class GanspaceEdit(Edit):
    """`strength` is the target coordinate along the component (in standard deviations), measured on layer 0's
    code centred on the PCA mean; the chosen layers move by (strength - coordinate) * component * std."""

    mean: torch.Tensor = None  # type: ignore[assignment]  # [1, dim]
    component: torch.Tensor = None  # type: ignore[assignment]  # [dim]
    std: float = 1.0

    def coordinate(self, codes: torch.Tensor) -> torch.Tensor:
        centred = codes[:, 0] - self.mean.to(codes)
        return (centred * self.component.to(codes)).sum(dim=1) / self.std

    def delta(self, codes: torch.Tensor, strength: float) -> torch.Tensor:
        step = (strength - self.coordinate(codes)).view(-1, 1, 1) * self.component.to(codes) * self.std
        return step * self.layer_mask(codes)


def load_pca(path: Path) -> dict[str, torch.Tensor]:
    try:
        pca = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EditError(f"{path}: not a GANSpace PCA file ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(pca, dict) or not {"mean", "comp", "std"} <= set(pca):
        raise EditError(f"{path}: a GANSpace PCA file is a dict with 'mean', 'comp' and 'std'")
    return {k: pca[k].float() for k in ("mean", "comp", "std")}


def ganspace_edit(pca: dict[str, torch.Tensor], index: int, layers: tuple[int, ...] | None, strength: float,
                  label: str) -> GanspaceEdit:
    n = pca["comp"].shape[0]
    if not 0 <= index < n:
        raise EditError(f"{label}: component {index} does not exist (0-{n - 1})")
    return GanspaceEdit(label=label, default_strength=strength, layers=layers,
                        description=f"GANSpace component {index}",
                        mean=pca["mean"].reshape(1, -1), component=pca["comp"][index].reshape(-1),
                        std=float(pca["std"][index]))
