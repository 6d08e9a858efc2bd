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


def codes_of(editor: FaceEditor, items: list[Item]):
    """W+ codes [B, n, d] of runner items: saved latents as they are (checked against the model), images
    encoded together in batches of the editor's batch size."""
    import torch

    to_encode = [item for item in items if item.code is None]
    encoded = iter(editor.encode([item.pixels for item in to_encode]).codes) if to_encode else iter(())
    return torch.stack([editor.check_codes(item.code, item.source)[0] if item.code is not None else next(encoded)
                        for item in items])


class AlignJob:
    """Only the aligned crop and its sidecar (the runner writes both)."""

    accepts_latents = False
    default_batch_size = 8
    notes: tuple[str, ...] = ()

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        return {}

    def compute(self, items: list[Item]) -> list[None]:
        return [None] * len(items)

    def write(self, item: Item, result: None, targets: dict[str, Path], overwrite: bool) -> None:
        pass


class InvertJob:
    """Encode the face and write its W+ code (.npy) and, unless `latent_only`, the generator's reconstruction."""

    accepts_latents = False
    notes: tuple[str, ...] = ()

    def __init__(self, inverter: FaceEditor, latent_only: bool = False):
        self.inverter = inverter
        self.latent_only = latent_only
        self.default_batch_size = inverter.batch_size

    def targets(self, item: Item, out_dir: Path) -> dict[str, Path]:
        out = {"latent": out_dir / f"{item.stem}.npy"}
        if not self.latent_only:
            out["image"] = out_dir / f"{item.stem}_inversion.png"
        return out

    def compute(self, items: list[Item]) -> list[Inversion]:
        codes = self.inverter.encode([item.pixels for item in items]).codes
        if self.latent_only:  # no generator pass: about half the time per face
            return [Inversion(code, None) for code in codes.cpu().numpy()]
        images = self.inverter.synthesize(codes)
        return [Inversion(code, image) for code, image in zip(codes.cpu().numpy(), images)]

    def write(self, item: Item, result: Inversion, targets: dict[str, Path], overwrite: bool) -> None:
        write_latent(result.code, targets["latent"], overwrite)
        if "image" in targets:
            write_png(result.image, targets["image"], overwrite)


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
    notes: tuple[str, ...] = ()  # what --keep removed from each edit, for every record

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
        self.notes = plan.notes
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
        codes = codes_of(self.inverter, items)
        edited = torch.stack([apply_edits(codes, edits) for _, edits in variants], dim=1)  # [B, V, n, d]
        batch = edited.flatten(0, 1)
        if self.plan.grid:
            batch = torch.cat([batch, codes])
        images = self.inverter.synthesize(batch)
        n, v = len(items), len(variants)
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
