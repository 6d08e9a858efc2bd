"""What each command does to one item (an aligned face or a saved latent), for runner.run_job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stylecli.editing.base import Edit
from stylecli.errors import InputError
from stylecli.images import write_latent, write_png
from stylecli.pipeline import FaceEditor
from stylecli.runner import Item


@dataclass
class Inversion:
    code: Any  # float32 [n_styles, style_dim]
    image: Any  # uint8 [size, size, 3] or None
    weights: Any = None  # per-photo generator weights (HyperStyle), saved compactly beside the latent
    steps: Any = None  # uint8 images of the passes before the last (--save-steps)


def codes_of(editor: FaceEditor, items: list[Item]):
    """W+ codes [B, n, d] of runner items: saved latents as they are (checked against the model), images
    encoded together in batches of the editor's batch size."""
    return encoded_of(editor, items).codes


def encoded_of(editor: FaceEditor, items: list[Item]):
    """Codes and per-photo generator weights of runner items: saved latents as they are (checked against the
    model, with the offsets saved beside them for HyperStyle), images encoded together in batches."""
    import torch

    from stylecli.encoders import Encoded
    from stylecli.fidelity_encoders import saved_weights

    to_encode = [item for item in items if item.code is None]
    encoded = editor.encode([item.pixels for item in to_encode]) if to_encode else None
    codes, weights, k = [], [], 0
    for item in items:
        if item.code is not None:
            codes.append(editor.check_codes(item.code, item.source)[0])
            weights.append(saved_weights(editor.encoder, item.source))
        else:
            codes.append(encoded.codes[k])
            weights.append(encoded.weights[k] if encoded.weights is not None else None)
            k += 1
    return Encoded(torch.stack(codes), weights if any(w is not None for w in weights) else None)


class AlignJob:
    """Only the aligned crop and its sidecar (the runner writes both)."""

    accepts_latents = False
    default_batch_size = 8

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        return {}

    def compute(self, items: list[Item]) -> list[None]:
        return [None] * len(items)

    def write(self, item: Item, result: None, targets: dict[str, Path], overwrite: bool) -> None:
        pass


class InvertJob:
    """Encode the face and write its W+ code (.npy) and, unless `latent_only`, the generator's reconstruction."""

    accepts_latents = False

    def __init__(self, inverter: FaceEditor, latent_only: bool = False, save_steps: bool = False):
        from stylecli.fidelity_encoders import HyperStyleEncoder, ReStyleEncoder

        if save_steps and not isinstance(inverter.encoder, (ReStyleEncoder, HyperStyleEncoder)):
            raise InputError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
        self.inverter = inverter
        self.latent_only = latent_only
        self.save_steps = save_steps
        self.default_batch_size = inverter.batch_size

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        from stylecli.fidelity_encoders import STATE_SUFFIX, HyperStyleEncoder

        out = {"latent": out_dir / f"{item.stem}.npy"}
        if isinstance(self.inverter.encoder, HyperStyleEncoder):
            out["offsets"] = out_dir / f"{item.stem}{STATE_SUFFIX}"
        if not self.latent_only:
            out["image"] = out_dir / f"{item.stem}_inversion.png"
        if self.save_steps:
            for t in range(1, self.inverter.encoder.steps):
                out[f"step{t}"] = out_dir / f"{item.stem}_step{t}.png"
        return out

    def compute(self, items: list[Item]) -> list[Inversion]:
        encoded = self.inverter.encode([item.pixels for item in items])
        codes, n = encoded.codes.cpu().numpy(), len(items)
        weights = encoded.weights or [None] * n
        if self.latent_only:  # no generator pass: about half the time per face
            return [Inversion(code, None, w) for code, w in zip(codes, weights)]
        images = self.inverter.synthesize(encoded.codes, encoded.weights)
        steps = [None] * n
        if self.save_steps:
            from stylecli.fidelity_encoders import step_renders

            step_codes, step_weights, t = step_renders(self.inverter.encoder, encoded)
            rendered = self.inverter.synthesize(step_codes, step_weights)
            steps = [rendered[i * t : (i + 1) * t] for i in range(n)]
        return [Inversion(*r) for r in zip(codes, images, weights, steps)]

    def write(self, item: Item, result: Inversion, targets: dict[str, Path], overwrite: bool) -> None:
        write_latent(result.code, targets["latent"], overwrite)
        if "offsets" in targets:
            from stylecli.fidelity_encoders import save_state

            save_state(result.weights.state, targets["offsets"], overwrite)
        if "image" in targets:
            write_png(result.image, targets["image"], overwrite)
        for t, image in enumerate(result.steps if result.steps is not None else [], start=1):
            write_png(image, targets[f"step{t}"], overwrite)


def strength_label(value: float) -> str:
    return f"{value:+g}"


@dataclass
class EditPlan:
    """Which edits to render: `edits` applied together, or one edit swept over `sweep` strengths."""

    edits: list[tuple[Edit, float | None]]
    sweep: list[float] | None = None
    grid: bool = False
    gif: bool = False
    paste_back: bool = False
    save_latent: bool = False

    def variants(self) -> list[tuple[str, list[tuple[Edit, float | None]]]]:
        if self.sweep is not None:
            edit = self.edits[0][0]
            return [(f"{edit.label}{strength_label(s)}", [(edit, s)]) for s in self.sweep]
        name = "_".join(
            f"{e.label}{strength_label(e.default_strength if s is None else s)}" for e, s in self.edits
        )
        return [(name, self.edits)]


class EditJob:
    """Encode (or read a saved latent), apply the edits, render every variant in one generator batch."""

    accepts_latents = True

    def __init__(self, inverter: FaceEditor, plan: EditPlan):
        self.inverter = inverter
        self.plan = plan
        self.default_batch_size = max(1, inverter.batch_size // len(plan.variants()))

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        if self.plan.paste_back and item.face is None and item.sidecar is None:
            raise InputError(
                f"{item.source}: --paste-back needs to know where the face was: align the photo (no --no-align), "
                f"or keep the .align.json written by `invert` next to the latent"
            )
        out: dict[str, Path] = {}
        for name, _ in self.plan.variants():
            out[name] = out_dir / f"{item.stem}_{name}.png"
            if self.plan.save_latent:
                out[f"{name}.latent"] = out_dir / f"{item.stem}_{name}.npy"
        base = self.plan.edits[0][0].label
        if self.plan.grid:
            out["grid"] = out_dir / f"{item.stem}_{base}_grid.png"
        if self.plan.gif:
            out["gif"] = out_dir / f"{item.stem}_{base}.gif"
        return out

    def input_targets(self, items: list[Item], stem: str, out_dir: Path) -> dict[str, Path]:
        """With --paste-back: one photo per variant with every chosen face of the input edited."""
        if not (self.plan.paste_back and items):
            return {}
        return {f"{name}.pasted": out_dir / f"{stem}_{name}_pasted.png" for name, _ in self.plan.variants()}

    def write_input(self, items: list[Item], results: list[dict[str, Any]], targets: dict[str, Path],
                    overwrite: bool) -> None:
        from stylecli.faces import paste_back

        placed = [self._photo_and_quad(item) for item in items]  # the photo is read once per input at most
        for v, (name, _) in enumerate(self.plan.variants()):
            photo = placed[0][0]
            for (_, quad), result in zip(placed, results):
                photo = paste_back(photo, result["images"][v], quad)
            write_png(photo, targets[f"{name}.pasted"], overwrite)

    def compute(self, items: list[Item]) -> list[dict[str, Any]]:
        """Every variant of every item (and each reconstruction, for grids) through the generator at once."""
        import torch

        from stylecli.editing import apply_edits

        variants = self.plan.variants()
        encoded = encoded_of(self.inverter, items)
        codes, n, v = encoded.codes, len(items), len(variants)
        edited = torch.stack([apply_edits(codes, edits) for _, edits in variants], dim=1)  # [B, V, n, d]
        batch = edited.flatten(0, 1)
        weights = None
        if encoded.weights is not None:  # each photo's generator weights render its variants
            weights = [w for w in encoded.weights for _ in range(v)]
        if self.plan.grid:
            batch = torch.cat([batch, codes])
            weights = None if weights is None else weights + list(encoded.weights)
        images = self.inverter.synthesize(batch, weights)
        return [
            {"codes": edited[i].cpu().numpy(), "images": images[i * v : (i + 1) * v],
             "recon": images[n * v + i] if self.plan.grid else None}
            for i in range(n)
        ]

    def write(self, item: Item, result: dict[str, Any], targets: dict[str, Path], overwrite: bool) -> None:
        variants = self.plan.variants()
        for (name, _), image, code in zip(variants, result["images"], result["codes"]):
            write_png(image, targets[name], overwrite)
            if self.plan.save_latent:
                write_latent(code, targets[f"{name}.latent"], overwrite)
        if self.plan.grid:
            from stylecli.sheets import contact_sheet

            cells = ([item.pixels] if item.pixels is not None else []) + [result["recon"], *result["images"]]
            labels = (["input"] if item.pixels is not None else []) + ["inversion"] + [n for n, _ in variants]
            write_png(contact_sheet(cells, labels), targets["grid"], overwrite)
        if self.plan.gif:
            from stylecli.sheets import write_gif

            write_gif(list(result["images"]), targets["gif"], overwrite)

    @staticmethod
    def _photo_and_quad(item: Item):
        if item.face is not None:
            return item.photo, item.face.quad
        from stylecli.images import read_image

        source = Path(item.sidecar["source"])
        try:
            photo = read_image(source).pixels
        except InputError as exc:
            raise InputError(f"{item.source}: --paste-back needs the original photo: {exc}") from None
        if list(photo.shape[1::-1]) != list(item.sidecar["image_size"]):
            raise InputError(f"{item.source}: {source} is no longer the photo that was aligned (its size changed)")
        return photo, item.sidecar["quad"]
