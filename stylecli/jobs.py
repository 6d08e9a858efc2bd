"""What each command does to one input, built on the FaceEditor's stages, for runner.run_job.

An input becomes units: each chosen face of a photo (aligned), the whole image (--no-align), or a saved latent.
Every aligned face also writes its crop (NAME_aligned.png) and its sidecar (NAME.align.json: where the face
was, for a later --paste-back); with --faces all or an index, file names get _faceK. Record keys: a face's
files are `faceK.KIND` whenever faces were detected (K = 0 for the largest), whatever --faces says; files of
the whole input (a pasted photo: `VARIANT.pasted`) and of unaligned inputs or latents are plain `KIND`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylecli.encoders import Encoded
from stylecli.errors import InputError, UsageError
from stylecli.images import write_latent, write_png
from stylecli.pipeline import FaceEditor
from stylecli.results import Photo, Variant
from stylecli.runner import Task

if TYPE_CHECKING:
    from stylecli.tuning.stage import Tuner


@dataclass
class FaceOptions:
    align: bool = True  # False: inputs are aligned crops already
    faces: str = "largest"  # largest | all | an index


@dataclass
class Unit:
    """One unit of model work of an input."""

    stem: str  # output name stem, unique within the batch
    prefix: str  # prefix of its keys in the record's outputs ("" or "face1.")
    crop: np.ndarray | None = None  # the encoder's input (aligned crop, or a --no-align image)
    code: np.ndarray | None = None  # a saved latent, checked against the model
    index: int | None = None  # face index (0 = largest) when aligned
    face: Any = None  # faces.Face when aligned here
    quad: np.ndarray | None = None  # where the face sits in `photo` (for paste-back)
    offsets: Any = None  # a saved HyperStyle latent's compact offsets (fidelity_encoders.HyperStyleState)
    target: np.ndarray | None = None  # with --tune: the face at the generator's resolution
    weights: Any = None  # a saved latent's tuned GeneratorWeights (from NAME.tuned.safetensors)
    tuning: dict[str, str] | None = None  # and how they were tuned (that file's record), for edited latents


@dataclass
class Prepared:
    units: list[Unit]
    photo: Photo | None = None  # the photo the faces come from (for paste-back)
    found: int = 0  # faces chosen in the photo (written to each sidecar)


@dataclass
class Inversion:
    code: np.ndarray  # float32 [n_styles, style_dim]
    image: np.ndarray | None  # uint8 [size, size, 3]; None with --latent-only
    weights: Any = None  # per-photo generator weights (HyperStyle offsets or --tune), saved beside the latent
    steps: list[np.ndarray] | None = None  # images of the passes before the last (--save-steps)


def sidecar_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}.align.json"


class PhotoJob:
    """Reading, aligning and the crop / sidecar files, shared by align, invert and edit. Subclasses name their
    own outputs per unit (`unit_outputs`) and per input (`input_outputs`), compute, and write them."""

    accepts_latents = False
    unit_name = "faces"  # a unit is a face (an aligned crop, a --no-align image or a saved latent)

    def __init__(self, editor: FaceEditor, options: FaceOptions, tuner: Tuner | None = None,
                 saved_tuning: bool = False):
        self.editor = editor
        self.options = options
        self.default_batch_size = editor.batch_size
        self.tuner = tuner  # pivotal tuning of each face (--tune)
        self.saved_tuning = saved_tuning  # render saved latents through their NAME.tuned.safetensors
        self.name_tag = settings_tag(editor, tuner)
        self._generator_fingerprint: str | None = None
        if options.align:
            editor.aligner  # noqa: B018 - load dlib's models now: a missing model is one error, not one per input
        if tuner is not None:
            from stylecli.fidelity_encoders import HyperStyleEncoder

            if isinstance(editor.encoder, HyperStyleEncoder):
                raise UsageError("--tune: a HyperStyle model already adapts the generator to each photo; "
                                 "tune from an e4e or ReStyle model instead")
            tuner.perceptual(editor.device)  # a missing LPIPS network is one error before any work

    # -- what an input writes -----------------------------------------------------------------------------

    def unit_outputs(self, stem: str, out_dir: Path) -> dict[str, Path]:
        return {}

    def input_outputs(self, stem: str, out_dir: Path, prepared: Prepared) -> dict[str, Path]:
        return {}

    def _outputs(self, stem: str, out_dir: Path, prepared: Prepared) -> dict[str, Path]:
        outputs: dict[str, Path] = {}
        for unit in prepared.units:
            files = self.unit_outputs(unit.stem, out_dir)
            if unit.index is not None:
                files = {**files, "aligned": out_dir / f"{unit.stem}_aligned.png",
                         "alignment": sidecar_path(out_dir, unit.stem)}
            outputs.update({unit.prefix + k: v for k, v in files.items()})
        outputs.update(self.input_outputs(stem, out_dir, prepared))
        return outputs

    def expected_outputs(self, source: Path, stem: str, out_dir: Path) -> list[Path] | None:
        """Exact names: with --faces all, the count of faces comes from the first face's sidecar."""
        latent = source.suffix.lower() == ".npy"
        stem = stem if latent else stem + self.name_tag
        aligned = self.options.align and not latent
        which = self.options.faces
        if not aligned or which == "largest":
            indices = [0]
        elif which == "all":
            indices = _faces_found(sidecar_path(out_dir, f"{stem}_face0"))
            if not indices:
                return None
        else:
            indices = [int(which)]
        suffixed = aligned and which != "largest"
        tuning = {} if latent and self._renders_saved_tuning(source) else None  # (names only: not read here)
        units = [Unit(f"{stem}_face{i}" if suffixed else stem, f"face{i}." if aligned else "",
                      index=i if aligned else None, tuning=tuning) for i in indices]
        prepared = Prepared(units, found=len(units))
        return list(self._outputs(stem, out_dir, prepared).values())

    # -- reading -------------------------------------------------------------------------------------------

    def prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        if source.suffix.lower() != ".npy":  # a latent's name already says how it was made
            stem += self.name_tag
        task = self._prepare(source, stem, out_dir)
        if self.tuner is not None or self.saved_tuning:
            self._prepare_tuning(source, task)
        return task

    def _prepare_tuning(self, source: Path, task: Task) -> None:
        """--tune: each face's target at full resolution; a latent: its saved tuned weights, when present."""
        from stylecli.tuning import load_tuned, tuned_path

        prepared: Prepared = task.data
        for unit in prepared.units:
            if unit.code is None and self.tuner is not None:
                unit.target = self.editor.target(prepared.photo, unit.quad)
            elif self.tuner is not None:
                raise InputError(f"{source}: --tune needs the photo, not a latent: run `stylecli invert PHOTO --tune`"
                                 " (it writes the tuned weights beside the latent) or edit the photo itself")
            elif unit.tuning is not None:
                unit.weights = load_tuned(tuned_path(source), self.editor.generator, self._fingerprint(), unit.code)
                task.notes.append(f"rendering through {tuned_path(source)} (--no-tune ignores it)")

    def _renders_saved_tuning(self, latent: Path) -> bool:
        """Whether a saved latent renders through the tuned weights beside it."""
        from stylecli.tuning import tuned_path

        return self.tuner is None and self.saved_tuning and tuned_path(latent).is_file()

    def _saved_tuning_record(self, latent: Path) -> dict[str, str] | None:
        """How the weights beside a saved latent were tuned, when it renders through them (else None)."""
        from stylecli.tuning import tuned_path

        return tuning_record(tuned_path(latent)) if self._renders_saved_tuning(latent) else None

    def _fingerprint(self) -> str:
        """The generator's fingerprint, computed once (saved tuned weights are checked against it)."""
        if self._generator_fingerprint is None:
            from stylecli.tuning import fingerprint

            self._generator_fingerprint = fingerprint(self.editor.generator)
        return self._generator_fingerprint

    def _prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        from stylecli.faces import select_faces

        if source.suffix.lower() == ".npy":
            if not self.accepts_latents:
                raise InputError(f"{source}: a latent file; this command needs an image")
            from stylecli.fidelity_encoders import saved_state

            code = self.read_latent(source)
            unit = Unit(stem, "", code=code, offsets=saved_state(self.editor.encoder, source, code),
                        tuning=self._saved_tuning_record(source))
            prepared = Prepared([unit])
            return Task(source, self._outputs(stem, out_dir, prepared), 1, prepared)
        photo = self.editor.read(source)
        if not self.options.align:
            prepared = Prepared([Unit(stem, "", crop=photo.pixels)], photo)
            return Task(source, self._outputs(stem, out_dir, prepared), 1, prepared, photo.notes + squash_note(photo))
        found = self.editor.detect(photo)
        if not found:
            raise InputError(self.no_face_message(source))
        chosen = select_faces(found, self.options.faces, source)
        suffixed = self.options.faces != "largest"
        units = [Unit(f"{stem}_face{i}" if suffixed else stem, f"face{i}.",
                      crop=self.editor.align(photo, face), index=i, face=face, quad=face.quad) for i, face in chosen]
        prepared = Prepared(units, photo, found=len(units))
        details = {"faces": [{"index": u.index, **u.face.to_dict()} for u in units]}
        return Task(source, self._outputs(stem, out_dir, prepared), len(units), prepared, photo.notes, details)

    def no_face_message(self, source: Path) -> str:
        return (f"no face found in {source}; pass --no-align if the image is already an aligned crop, "
                "or --detector-upsample 2 for very small faces")

    def read_latent(self, source: Path) -> np.ndarray:
        """A saved latent, checked against the model before any work (wrong styles or width: this input fails)."""
        from stylecli.images import read_latent

        code = read_latent(source)
        return self.editor.check_codes(code, source)[0].cpu().numpy()

    # -- model work and writing ---------------------------------------------------------------------------

    def codes(self, units: list[Unit]):
        """W+ codes [B, n, d] of units (saved latents as they are; crops encoded together, in batches) and the
        per-unit generator weights (None when no encoder returned any)."""
        import torch

        to_encode = [u for u in units if u.code is None]
        encoded = self.editor.encode([u.crop for u in to_encode]) if to_encode else None
        if encoded is not None and self.tuner is not None:
            encoded = self.editor.tune([u.target for u in to_encode], encoded, self.tuner, [u.stem for u in to_encode])
        codes, weights, k = [], [], 0
        for u in units:
            if u.code is not None:
                from stylecli.fidelity_encoders import weights_from_state

                codes.append(torch.as_tensor(u.code, device=self.editor.device))
                weights.append(u.weights if u.weights is not None
                               else weights_from_state(self.editor.encoder, u.offsets))
            else:
                codes.append(encoded.codes[k])
                weights.append(encoded.weights[k] if encoded.weights is not None else None)
                k += 1
        return torch.stack(codes), (weights if any(w is not None for w in weights) else None)

    def weights_outputs(self, unit: Unit, latent: Path) -> dict[str, Path]:
        """The per-photo weights a latent written for `unit` renders with, beside it (write_weights)."""
        from stylecli.fidelity_encoders import HyperStyleEncoder, state_path
        from stylecli.tuning import tuned_path

        if self.tuner is not None or unit.tuning is not None:  # (tuned weights win, as in `codes`)
            return {"tuned": tuned_path(latent)}
        if isinstance(self.editor.encoder, HyperStyleEncoder):
            return {"offsets": state_path(latent)}
        return {}

    def write_weights(self, unit: Unit, latent: Path, code: np.ndarray, weights: Any, files: dict[str, Path],
                      overwrite: bool) -> None:
        """Beside a written latent, the per-photo weights it renders with (write_photo_weights), as declared in
        `files` (weights_outputs); with `overwrite`, a weights file left beside it by an earlier run goes."""
        from stylecli.fidelity_encoders import state_path
        from stylecli.tuning import tuned_path

        declared = set(self.weights_outputs(unit, latent).values()) & set(files.values())
        if declared:
            if self.tuner is not None:
                tuning, base = self.tuner.metadata(), self.tuner.fingerprint(self.editor.generator)
            else:
                tuning, base = unit.tuning, (self._fingerprint() if unit.tuning is not None else None)
            written = write_photo_weights(self.editor, latent, code, weights, tuning, base, overwrite)
            if written not in declared:  # a bug, reported for this input only (its declared outputs are removed)
                if written is not None:
                    written.unlink(missing_ok=True)
                raise InputError(f"{latent}: no generator weights of the kind declared ({sorted(map(str, declared))})"
                                 " were computed; please report this")
        for stale in {state_path(latent), tuned_path(latent)} - declared:
            if overwrite and stale.is_file():  # it would belong to the latent this run replaced
                stale.unlink()

    def compute(self, tasks: list[Task]) -> list[list[Any]]:
        units = [u for t in tasks for u in t.data.units]
        results = iter(self.compute_units(units) if units else [])
        return [[next(results) for _ in t.data.units] for t in tasks]

    def compute_units(self, units: list[Unit]) -> list[Any]:
        return [None] * len(units)

    def write(self, task: Task, result: list[Any], overwrite: bool) -> None:
        from stylecli.faces import write_sidecar

        prepared: Prepared = task.data
        for unit, unit_result in zip(prepared.units, result):
            files = {k[len(unit.prefix):]: v for k, v in task.outputs.items() if k.startswith(unit.prefix)}
            if unit.index is not None:
                write_png(unit.crop, files["aligned"], overwrite)
                write_sidecar(files["alignment"], task.source, prepared.photo.size, unit.index, unit.face,
                              overwrite, found=prepared.found)
            self.write_unit(unit, unit_result, files, overwrite)
        self.write_input(task, result, overwrite)

    def write_unit(self, unit: Unit, result: Any, files: dict[str, Path], overwrite: bool) -> None:
        pass

    def write_input(self, task: Task, results: list[Any], overwrite: bool) -> None:
        pass


def settings_tag(editor: FaceEditor, tuner: Tuner | None) -> str:
    """The model settings that change the pixels, for the output names of photos (a latent's name already says
    how it was made): refinement passes other than the official 5 (`_steps3`), half precision (`_fp16`) and
    pivotal tuning with its settings (`_tuned`, `_tuned-s100`). The model itself is not named: one output folder
    per model."""
    from stylecli.restyle_checkpoint import DEFAULT_STEPS

    steps = getattr(editor.encoder, "steps", DEFAULT_STEPS)
    precision = getattr(editor, "precision", "fp32")
    return "".join([f"_steps{steps}" if steps != DEFAULT_STEPS else "", f"_{precision}" if precision != "fp32" else "",
                    tuner.name_tag() if tuner is not None else ""])


def squash_note(photo: Photo) -> list[str]:
    """--no-align resizes to a square: say so when the image is not one (a warning when it is far from one)."""
    w, h = photo.size
    if w == h:
        return []
    note = f"not square ({w}x{h}): resized to 256x256 without keeping the aspect ratio"
    return [f"warning: {note}; align it (drop --no-align) or crop it square" if max(w, h) > 1.25 * min(w, h)
            else note]


def _faces_found(first_sidecar: Path) -> list[int]:
    """The face indices an earlier --faces all run wrote, from its first sidecar ([] when unknown)."""
    import json

    try:
        found = int(json.loads(first_sidecar.read_text())["faces_found"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return list(range(found))


class AlignJob(PhotoJob):
    """Only the aligned crops and their sidecars."""

    def __init__(self, editor: FaceEditor, options: FaceOptions):
        super().__init__(editor, options)
        self.default_batch_size = 8

    def no_face_message(self, source: Path) -> str:
        return f"no face found in {source}; try --detector-upsample 2 for very small faces"


class InvertJob(PhotoJob):
    """Encode each face; write its W+ code (.npy) and, unless `latent_only`, the generator's reconstruction."""

    def __init__(self, editor: FaceEditor, options: FaceOptions, latent_only: bool = False,
                 tuner: Tuner | None = None, save_steps: bool = False):
        from stylecli.fidelity_encoders import HyperStyleEncoder, ReStyleEncoder

        super().__init__(editor, options, tuner)
        if save_steps and not isinstance(editor.encoder, (ReStyleEncoder, HyperStyleEncoder)):
            raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
        if save_steps and tuner is not None:
            raise UsageError("--save-steps shows the encoder's passes; it does not combine with --tune")
        self.latent_only = latent_only
        self.save_steps = save_steps

    def unit_outputs(self, stem: str, out_dir: Path) -> dict[str, Path]:
        out = {"latent": out_dir / f"{stem}.npy"}
        if not self.latent_only:
            out["image"] = out_dir / f"{stem}_inversion.png"
        if self.save_steps:  # every pass but the last, which is the reconstruction
            out.update({f"step{t}": out_dir / f"{stem}_step{t}.png" for t in range(1, self.editor.encoder.steps)})
        # HyperStyle's offsets or the tuned weights, to edit the latent later
        return {**out, **self.weights_outputs(Unit(stem, ""), out["latent"])}

    def compute_units(self, units: list[Unit]) -> list[Inversion]:
        if self.save_steps:
            return self._compute_with_steps(units)
        codes, weights = self.codes(units)
        per_unit = weights or [None] * len(units)
        if self.latent_only:  # no generator pass: about half the time per face
            return [Inversion(code, None, w) for code, w in zip(codes.cpu().numpy(), per_unit)]
        images = self.editor.synthesize(codes, weights)
        return [Inversion(code, image, w) for code, image, w in zip(codes.cpu().numpy(), images, per_unit)]

    def _compute_with_steps(self, units: list[Unit]) -> list[Inversion]:
        """--save-steps (never with --tune): the iterative encoder's passes rendered beside the result."""
        from stylecli.fidelity_encoders import step_renders

        encoded = self.editor.encode([u.crop for u in units])
        codes, n = encoded.codes.cpu().numpy(), len(units)
        weights = encoded.weights or [None] * n
        images = self.editor.synthesize(encoded.codes, encoded.weights)
        step_codes, step_weights, t = step_renders(self.editor.encoder, encoded)
        rendered = self.editor.synthesize(step_codes, step_weights)
        steps = [list(rendered[i * t : (i + 1) * t]) for i in range(n)]
        return [Inversion(*r) for r in zip(codes, images, weights, steps)]

    def write_unit(self, unit: Unit, result: Inversion, files: dict[str, Path], overwrite: bool) -> None:
        write_latent(result.code, files["latent"], overwrite)
        self.write_weights(unit, files["latent"], result.code, result.weights, files, overwrite)
        if "image" in files:
            write_png(result.image, files["image"], overwrite)
        for t, image in enumerate(result.steps or [], start=1):
            write_png(image, files[f"step{t}"], overwrite)


# The tuned-weights file's own records, not how the weights were tuned (tuning_record leaves them out).
_STORE_KEYS = ("format", "version", "base_fingerprint", "pivot_sha256")


def tuning_record(path: Path) -> dict[str, str]:
    """How the weights in a tuned-generator file were tuned (its metadata without the file's own records)."""
    from stylecli.tuning.store import read_metadata

    return {k: v for k, v in read_metadata(path).items() if k not in _STORE_KEYS}


def write_photo_weights(editor: FaceEditor, latent: Path, code: np.ndarray, weights: Any,
                        tuning: dict[str, str] | None = None, base_fingerprint: str | None = None,
                        overwrite: bool = False) -> Path | None:
    """What `edit LATENT` needs beside a latent to render it as it was rendered here, tied to `code` (the
    latent's values): HyperStyle's offsets (NAME.hyperstyle.npz, with the model's fingerprint) or tuned
    generator weights (NAME.tuned.safetensors, with `tuning`, how they were tuned, and the base generator's
    fingerprint); None for the shared generator."""
    from stylecli.fidelity_encoders import HyperStyleWeights, save_state, state_path

    if weights is None:
        return None
    if isinstance(weights, HyperStyleWeights):
        return save_state(weights.state, state_path(latent), editor.encoder.fingerprint, code, overwrite)
    from stylecli.tuning import tuned_path
    from stylecli.tuning.store import code_digest, save_tuned

    metadata = {**(tuning or {}), "pivot_sha256": code_digest(code)}
    return save_tuned(tuned_path(latent), editor.generator, weights, metadata, base_fingerprint=base_fingerprint,
                      overwrite=overwrite)


@dataclass
class EditPlan:
    """Which edits to render: `edits` applied together, or one edit swept over `sweep` strengths."""

    edits: list[tuple[Any, float | None]]  # (editing.Edit, strength or None for its default)
    sweep: list[float] | None = None
    grid: bool = False
    gif: bool = False
    paste_back: bool = False
    save_latent: bool = False
    blend: str = "feather"
    keep: tuple[Any, ...] = ()  # directions every edit holds (--keep): specs, then Edits once resolved
    notes: tuple[str, ...] = ()  # what --keep left of each edit (cosines), for every record

    def variants(self) -> list[Variant]:
        from stylecli.pipeline import strength_label, variant_of

        if self.sweep is not None:  # names sort in sweep order: label_00-4, label_01-3, ...
            edit = self.edits[0][0]
            width = len(str(len(self.sweep) - 1))
            return [Variant(f"{edit.label}_{i:0{width}d}{strength_label(s)}", ((edit, s),))
                    for i, s in enumerate(self.sweep)]
        return [variant_of(self.edits)]


@dataclass
class EditResult:
    codes: np.ndarray  # [V, n_styles, dim]
    images: list[np.ndarray]  # one per variant
    recon: np.ndarray | None = None  # for grids
    extra: dict[str, Any] = field(default_factory=dict)
    weights: Any = None  # the face's own generator weights (HyperStyle offsets, tuning), for --save-latent


class EditJob(PhotoJob):
    """Encode (or read a saved latent), apply the edits, render every variant in one generator batch."""

    accepts_latents = True

    def __init__(self, editor: FaceEditor, options: FaceOptions, plan: EditPlan, tuner: Tuner | None = None,
                 saved_tuning: bool = True):
        super().__init__(editor, options, tuner, saved_tuning)
        self.plan = plan
        self.variants = plan.variants()
        self.default_batch_size = max(1, editor.batch_size // len(self.variants))

    def unit_outputs(self, stem: str, out_dir: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for variant in self.variants:
            out[variant.name] = out_dir / f"{stem}_{variant.name}.png"
            if self.plan.save_latent:
                out[f"{variant.name}.latent"] = out_dir / f"{stem}_{variant.name}.npy"
        base = self.plan.edits[0][0].label
        if self.plan.grid:
            out["grid"] = out_dir / f"{stem}_{base}_grid.png"
        if self.plan.gif:
            out["gif"] = out_dir / f"{stem}_{base}.gif"
        return out

    def _outputs(self, stem: str, out_dir: Path, prepared: Prepared) -> dict[str, Path]:
        """With --save-latent, each edited latent gets the face's own generator weights beside it (HyperStyle's
        offsets or tuned weights, weights_outputs) and, for an aligned face, its own sidecar
        (NAME_VARIANT.align.json, what `edit NAME_VARIANT.npy --paste-back` reads)."""
        outputs = super()._outputs(stem, out_dir, prepared)
        if self.plan.save_latent:
            for unit, v in ((u, v) for u in prepared.units for v in self.variants):
                key = f"{unit.prefix}{v.name}"
                outputs.update({f"{key}.{kind}": path for kind, path in
                                self.weights_outputs(unit, outputs[f"{key}.latent"]).items()})
                if unit.index is not None:
                    outputs[f"{key}.alignment"] = sidecar_path(out_dir, f"{unit.stem}_{v.name}")
        return outputs

    def input_outputs(self, stem: str, out_dir: Path, prepared: Prepared) -> dict[str, Path]:
        """With --paste-back: one photo per variant with every chosen face of the input edited."""
        if not self.plan.paste_back:
            return {}
        kind = "pasted" if self.plan.blend == "feather" else f"pasted-{self.plan.blend}"
        return {f"{v.name}.pasted": out_dir / f"{stem}_{v.name}_{kind}.png" for v in self.variants}

    def prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        task = super().prepare(source, stem, out_dir)
        task.notes = [*task.notes, *self.plan.notes]
        if self.plan.paste_back:
            prepared: Prepared = task.data
            if prepared.photo is None and prepared.units[0].code is not None:
                _place_latent(source, prepared, self.editor)
            elif prepared.units[0].quad is None:
                raise InputError(f"{source}: --paste-back needs to know where the face was: align the photo "
                                 "(no --no-align), or keep the .align.json written by `invert` next to the latent")
        return task

    def compute_units(self, units: list[Unit]) -> list[EditResult]:
        import torch

        codes, weights = self.codes(units)
        edited = self.editor.edit(codes, self.variants)  # [B, V, n, d]
        n, v = len(units), len(self.variants)
        batch = edited.flatten(0, 1)
        batch_weights = None if weights is None else [w for w in weights for _ in range(v)]
        if self.plan.grid:
            batch = torch.cat([batch, codes])
            batch_weights = None if weights is None else batch_weights + list(weights)
        images = self.editor.synthesize(batch, batch_weights)
        edited_np = edited.cpu().numpy()
        return [EditResult(edited_np[i], list(images[i * v : (i + 1) * v]),
                           images[n * v + i] if self.plan.grid else None,
                           weights=None if weights is None else weights[i]) for i in range(n)]

    def write_unit(self, unit: Unit, result: EditResult, files: dict[str, Path], overwrite: bool) -> None:
        for variant, image, code in zip(self.variants, result.images, result.codes):
            write_png(image, files[variant.name], overwrite)
            if self.plan.save_latent:
                latent = files[f"{variant.name}.latent"]
                write_latent(code, latent, overwrite)
                self.write_weights(unit, latent, code, result.weights, files, overwrite)
        if self.plan.grid:
            from stylecli.sheets import contact_sheet

            has_input = unit.crop is not None
            cells = ([unit.crop] if has_input else []) + [result.recon, *result.images]
            labels = (["input"] if has_input else []) + ["inversion"] + [v.name for v in self.variants]
            write_png(contact_sheet(cells, labels), files["grid"], overwrite)
        if self.plan.gif:
            from stylecli.sheets import write_gif

            write_gif(list(result.images), files["gif"], overwrite)

    def write(self, task: Task, result: list[Any], overwrite: bool) -> None:
        from stylecli.faces import write_sidecar

        super().write(task, result, overwrite)
        prepared: Prepared = task.data
        for unit in (u for u in prepared.units if u.index is not None):
            for variant in self.variants:
                dest = task.outputs.get(f"{unit.prefix}{variant.name}.alignment")
                if dest is not None:
                    write_sidecar(dest, task.source, prepared.photo.size, unit.index, unit.face, overwrite,
                                  found=prepared.found)

    def write_input(self, task: Task, results: list[EditResult], overwrite: bool) -> None:
        if not self.plan.paste_back:
            return
        prepared: Prepared = task.data
        quads = [u.quad for u in prepared.units]
        for k, variant in enumerate(self.variants):
            photo = self.editor.paste_back(prepared.photo, [r.images[k] for r in results], quads, self.plan.blend)
            write_png(photo, task.outputs[f"{variant.name}.pasted"], overwrite)


def _place_latent(source: Path, prepared: Prepared, editor: FaceEditor) -> None:
    """A saved latent's photo and quad, from the sidecar `invert` wrote beside it."""
    from stylecli.faces import read_sidecar, sidecar_photo

    side = sidecar_path(source.parent, source.stem)
    if not side.is_file():
        raise InputError(f"{source}: --paste-back needs to know where the face was: keep the {side.name} written "
                         "by `invert` next to the latent (or edit the photo itself)")
    data = read_sidecar(side)
    photo_path = sidecar_photo(side, data)
    try:
        photo = editor.read(photo_path)
    except InputError as exc:
        raise InputError(f"{source}: --paste-back needs the original photo: {exc}") from None
    if list(photo.size) != list(data["image_size"]):
        raise InputError(f"{source}: {photo_path} is no longer the photo that was aligned (its size changed)")
    prepared.photo = photo
    prepared.units[0].quad = data["quad"]


class CodeJob(PhotoJob):
    """The code of one input, image or saved latent (for mix): nothing written."""

    accepts_latents = True


def face_code(editor: FaceEditor, source: Path, align: bool = True) -> Encoded:
    """One input's W+ code [1, n, d] (its saved latent, or its largest face encoded) with its per-photo generator
    weights (`Encoded.weights`: None when the encoder gives none)."""
    job = CodeJob(editor, FaceOptions(align and Path(source).suffix.lower() != ".npy", "largest"))
    unit = job.prepare(Path(source), Path(source).stem, Path(".")).data.units[0]
    codes, weights = job.codes([unit])
    return Encoded(codes[:1], weights)
