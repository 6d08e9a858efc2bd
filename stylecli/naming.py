"""Every output-name rule in one place: what the commands, the batch jobs and the browser editor's downloads call
the files they write. Pure string and path arithmetic (no stylecli, torch or numpy import), so that any layer
may use it and a name is written once.

For a photo `photo.jpg` (stem `photo`, `photo-2` for a second `photo.*` in one batch), with the settings tag
(`_steps3`, `_fp16`, `_tuned-s100`) and, with --faces, `_faceK` appended:

    photo.npy  photo_inversion.png  photo_step1.png  photo_aligned.png  photo.align.json
    photo_age+3.png  photo_age+3.npy  photo_age_grid.png  photo_age.gif  photo_age+3_pasted.png
    photo.hyperstyle.npz  photo.tuned.safetensors      (the per-photo generator weights beside a latent)
    photo_tuned_untuned_age+3.png                       (edit --no-tune of a tuned latent, photo_tuned.npy)
    a+b_layers8-17.png                                  (mix)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

LATENT_SUFFIX = ".npy"
SIDECAR_SUFFIX = ".align.json"
HYPERSTYLE_SUFFIX = ".hyperstyle.npz"  # NAME.npy -> NAME.hyperstyle.npz
TUNED_SUFFIX = ".tuned.safetensors"  # NAME.npy -> NAME.tuned.safetensors


# -- inputs -----------------------------------------------------------------------------------------------------

def is_latent(path: Path | str) -> bool:
    """Whether an input is a saved latent (NAME.npy, any case) rather than a photo."""
    return Path(path).suffix.lower() == LATENT_SUFFIX


def latents_rendered_as(image: Path) -> list[Path]:
    """The latents beside an image that it may be a render of, by name alone: NAME.npy for NAME_aligned.png,
    NAME_inversion.png and NAME_stepK.png (invert's outputs), and X.npy for X.png (an edited variant saved with
    --save-latent). `edit FOLDER/` edits a latent found there rather than the images made from it."""
    image = Path(image)
    stems = [image.stem]
    for suffix in ("_aligned", "_inversion", "_step"):
        head, sep, tail = image.stem.rpartition(suffix)
        if sep and head and (tail == "" if suffix != "_step" else tail.isdigit()):
            stems.append(head)
    return [image.with_name(stem + LATENT_SUFFIX) for stem in stems]


def output_stems(inputs: Sequence[Path]) -> list[str]:
    """One output stem per input, unique within the batch: `photo`, then `photo-2` for a second `photo.*`."""
    counts: dict[str, int] = {}
    stems = []
    for p in inputs:
        n = counts.get(p.stem, 0) + 1
        counts[p.stem] = n
        stems.append(p.stem if n == 1 else f"{p.stem}-{n}")
    return stems


def untuned_stem(stem: str) -> str:
    """A tuned latent rendered through the shared generator (`edit --no-tune`): photo_tuned -> photo_tuned_untuned.
    Its renders have other pixels than the tuned ones (and than those of an untuned inversion, whose code differs
    with another --pivot), so they take neither name."""
    return f"{stem}_untuned"


def face_stem(stem: str, index: int) -> str:
    """A face's stem when faces are chosen (--faces all or K): photo -> photo_face1 (0 is the largest)."""
    return f"{stem}_face{index}"


# -- what changes the pixels: settings, variants --------------------------------------------------------------

def settings_tag(steps: int | None, official_steps: int, precision: str = "fp32", tuning: str = "") -> str:
    """The model settings that change the pixels, for the output names of photos (a latent's name already says
    how it was made): refinement passes other than the official count (`_steps3`; None: a one-pass encoder),
    half precision (`_fp16`, `_bf16`) and pivotal tuning (`tuning`, from tuning_tag). The model itself is not
    named: one output folder per model."""
    return "".join([f"_steps{steps}" if steps is not None and steps != official_steps else "",
                    f"_{precision}" if precision != "fp32" else "", tuning])


def tuning_tag(steps: int | None = None, lr: float | None = None, lpips_stop: float | None = None,
               locality: bool = False, pivot: str | None = None) -> str:
    """`_tuned`, plus each tuning setting given (those that differ from PTI's recipe): `_tuned-s100-lr0.01`."""
    parts = [f"s{steps}" if steps is not None else "", f"lr{lr:g}" if lr is not None else "",
             f"stop{lpips_stop:g}" if lpips_stop is not None else "", "locality" if locality else "", pivot or ""]
    return "-".join(["_tuned", *filter(None, parts)])


def strength_label(value: float) -> str:
    """A strength in a name: +3, -2.5, +0."""
    return f"{value:+g}"


def variant_name(steps: Iterable[tuple[str, float]]) -> str:
    """Edits applied together: label and signed strength of each, joined by '_' (age+3_smile-2)."""
    return "_".join(f"{label}{strength_label(strength)}" for label, strength in steps)


def sweep_names(label: str, strengths: Sequence[float]) -> list[str]:
    """One edit swept over strengths, numbered so that names sort in sweep order: age_0-4, age_1+0, age_2+4
    (age_00-4 ... with ten or more)."""
    width = len(str(len(strengths) - 1))
    return [f"{label}_{i:0{width}d}{strength_label(s)}" for i, s in enumerate(strengths)]


def layers_tag(layers: Sequence[int]) -> str:
    """(0, 1, 2, 3, 8) -> '0-3.8': the layers in a file name."""
    runs: list[list[int]] = []
    for i in layers:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ".".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def with_layers(label: str, layers: Sequence[int]) -> str:
    """An edit restricted to some layers (--layers): age -> age_layers0-3."""
    return f"{label}_layers{layers_tag(layers)}"


def keep_tag(kept: Sequence[object]) -> str:
    """('gender', 'sefa:2', 'dirs/glasses.npy') -> 'gender.sefa2.glasses': the kept directions in a file name."""
    return ".".join(Path(str(k)).stem.replace(":", "") if "/" in str(k) or "." in Path(str(k)).name
                    else str(k).replace(":", "") for k in kept)


def with_keep(label: str, kept: Sequence[object]) -> str:
    """An edit conditioned to keep other directions (--keep): age -> age_keep-gender.glasses."""
    return f"{label}_keep-{keep_tag(kept)}"


def pasted_kind(blend: str) -> str:
    """The paste-back suffix: `pasted` for the feathered blend, `pasted-BLEND` for another."""
    return "pasted" if blend == "feather" else f"pasted-{blend}"


# -- files ------------------------------------------------------------------------------------------------------

def latent_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}{LATENT_SUFFIX}"


def inversion_path(folder: Path, stem: str) -> Path:
    """The generator's reconstruction of an inverted face."""
    return folder / f"{stem}_inversion.png"


def step_path(folder: Path, stem: str, step: int) -> Path:
    """An iterative encoder's earlier pass (--save-steps), 1-based."""
    return folder / f"{stem}_step{step}.png"


def aligned_path(folder: Path, stem: str) -> Path:
    """The FFHQ-aligned crop of a face."""
    return folder / f"{stem}_aligned.png"


def sidecar_path(folder: Path, stem: str) -> Path:
    """Where the face was in its photo (for a later --paste-back)."""
    return folder / f"{stem}{SIDECAR_SUFFIX}"


def sidecar_of(latent: Path) -> Path:
    """The sidecar beside a latent: out/photo.npy -> out/photo.align.json."""
    return sidecar_path(latent.parent, latent.stem)


def variant_stem(stem: str, variant: str) -> str:
    """An edited variant of a face: photo, age+3 -> photo_age+3 (its image, latent and sidecar)."""
    return f"{stem}_{variant}"


def variant_path(folder: Path, stem: str, variant: str) -> Path:
    """The image of one edited variant of a face."""
    return folder / f"{variant_stem(stem, variant)}.png"


def grid_path(folder: Path, stem: str, label: str) -> Path:
    """The contact sheet of a sweep (--grid), named by the edit's label."""
    return folder / f"{stem}_{label}_grid.png"


def gif_path(folder: Path, stem: str, label: str) -> Path:
    return folder / f"{stem}_{label}.gif"


def pasted_path(folder: Path, stem: str, variant: str, blend: str = "feather") -> Path:
    """The whole photo with every edited face pasted back, one per variant."""
    return folder / f"{stem}_{variant}_{pasted_kind(blend)}.png"


def mix_name(first: str, second: str, layers: Sequence[int], alpha: float = 1.0) -> str:
    """mix's output stem: FIRST+SECOND_layersA-B, with _alphaX unless the layers are copied whole."""
    return f"{first}+{second}_layers{layers_tag(layers)}" + (f"_alpha{alpha:g}" if alpha != 1 else "")


def hyperstyle_offsets_path(latent: Path | str) -> Path:
    """Where a HyperStyle latent's compact offsets live: out/photo.npy -> out/photo.hyperstyle.npz."""
    latent = Path(latent)
    return latent.with_name(latent.stem + HYPERSTYLE_SUFFIX)


def tuned_weights_path(latent: Path | str) -> Path:
    """Where the tuned weights of a latent live: out/photo.npy -> out/photo.tuned.safetensors."""
    latent = Path(latent)
    return latent.with_name(latent.stem + TUNED_SUFFIX)
