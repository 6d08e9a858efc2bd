"""What each command does to one input, for runner.run_job: the pipeline's sources and render, named and written.

An input becomes units: each chosen face of a photo (aligned), the whole image (--no-align), or a saved latent
(pipeline.sources reads them; pipeline.render renders them). Every aligned face also writes its crop
(NAME_aligned.png) and its sidecar (NAME.align.json: where the face was, for a later --paste-back); with --faces
all or an index, file names get _faceK. The crop and the sidecar depend only on the photo and its alignment:
they are the runner's shared outputs (Task.shared), reused when a file of the same name holds the same crop /
the same quad and landmarks (a second command on a photo into the same folder). Record keys: a face's files
are `faceK.KIND` whenever faces were detected (K = 0 for the largest), whatever --faces says; files of the
whole input (a pasted photo: `VARIANT.pasted`) and of unaligned inputs or latents are plain `KIND`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stylecli.batch.runner import Task
from stylecli.errors import InputError, UsageError
from stylecli.files.images import write_latent, write_png
from stylecli.naming import (
    aligned_path,
    face_stem,
    gif_path,
    grid_path,
    inversion_path,
    is_latent,
    latent_path,
    pasted_path,
    sidecar_path,
    step_path,
    sweep_names,
    untuned_stem,
    variant_path,
    variant_stem,
)
from stylecli.photo_weights import has_tuned_weights, remove_stale_weights, weights_outputs, write_photo_weights
from stylecli.pipeline.editor import FaceEditor
from stylecli.pipeline.render import paste_variants, render_variants
from stylecli.pipeline.results import Variant
from stylecli.pipeline.sources import Source, SourceFace, add_tuning_targets, encode_faces, open_source

if TYPE_CHECKING:
    from stylecli.tuning.stage import Tuner


@dataclass
class FaceOptions:
    align: bool = True  # False: inputs are aligned crops already
    faces: str = "largest"  # largest | all | an index


@dataclass
class Unit:
    """One unit of model work of an input: a face of its source, with the names of its outputs."""

    stem: str  # output name stem, unique within the batch
    prefix: str  # prefix of its keys in the record's outputs ("" or "face1.")
    face: SourceFace = field(default_factory=SourceFace)


@dataclass
class Prepared:
    units: list[Unit]
    source: Source | None = None  # what was read (the photo the faces come from, for paste-back)

    @property
    def photo(self):
        return None if self.source is None else self.source.photo


@dataclass
class Inversion:
    code: np.ndarray  # float32 [n_styles, style_dim]
    image: np.ndarray | None  # uint8 [size, size, 3]; None with --latent-only
    weights: Any = None  # per-photo generator weights (HyperStyle offsets or --tune), saved beside the latent
    steps: list[np.ndarray] | None = None  # images of the passes before the last (--save-steps)


class PhotoJob:
    """The crop / sidecar files and the names, shared by align, invert and edit, over the pipeline's sources.
    Subclasses name their own outputs per unit (`unit_outputs`) and per input (`input_outputs`), compute, and
    write them."""

    accepts_latents = False
    unit_name = "faces"  # a unit is a face (an aligned crop, a --no-align image or a saved latent)

    def __init__(self, editor: FaceEditor, options: FaceOptions, tuner: Tuner | None = None,
                 saved_tuning: bool = False):
        self.editor = editor
        self.options = options
        self.default_batch_size = editor.batch_size
        self.tuner = tuner  # pivotal tuning of each face (--tune)
        self.saved_tuning = saved_tuning  # render saved latents through their NAME.tuned.safetensors
        self.name_tag = editor.settings_tag(tuner)
        if tuner is not None:
            from stylecli.encoders.base import capabilities

            caps = capabilities(editor.encoder)
            if not caps.tunable:
                raise UsageError(f"--tune: a {caps.label} model already adapts the generator to each photo; "
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
            if unit.face.index is not None:
                files = {**files, "aligned": aligned_path(out_dir, unit.stem),
                         "alignment": sidecar_path(out_dir, unit.stem)}
            outputs.update({unit.prefix + k: v for k, v in files.items()})
        outputs.update(self.input_outputs(stem, out_dir, prepared))
        return outputs

    def expected_outputs(self, source: Path, stem: str, out_dir: Path) -> dict[str, Path] | None:
        """Exact names: with --faces all, the count of faces comes from the first face's sidecar."""
        latent = is_latent(source)
        stem = self._latent_stem(source, stem) if latent else stem + self.name_tag
        aligned = self.options.align and not latent
        which = self.options.faces
        if not aligned or which == "largest":
            indices = [0]
        elif which == "all":
            indices = _faces_found(sidecar_path(out_dir, face_stem(stem, 0)))
            if not indices:
                return None
        else:
            indices = [int(which)]
        suffixed = aligned and which != "largest"
        tuning = {} if latent and self._renders_saved_tuning(source) else None  # (names only: not read here)
        units = [Unit(face_stem(stem, i) if suffixed else stem, f"face{i}." if aligned else "",
                      SourceFace(index=i if aligned else None, tuning=tuning)) for i in indices]
        return self._outputs(stem, out_dir, Prepared(units))

    # -- reading -------------------------------------------------------------------------------------------

    def prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        """The input read through the pipeline's sources, its units named (a latent's name already says how it
        was made; a photo's gets the settings tag)."""
        stem = self._latent_stem(source, stem) if is_latent(source) else stem + self.name_tag
        read = open_source(self.editor, source, align=self.options.align, faces=self.options.faces,
                           latents=self.accepts_latents, saved_tuning=self.saved_tuning and self.tuner is None,
                           photo_of_latent=self.needs_photo_of_latent, no_face=self.no_face_message(source))
        if self.tuner is not None:
            add_tuning_targets(self.editor, read)
        suffixed = read.faces[0].index is not None and self.options.faces != "largest"
        units = [Unit(face_stem(stem, f.index) if suffixed else stem,
                      f"face{f.index}." if f.index is not None else "", f) for f in read.faces]
        prepared = Prepared(units, read)
        details = {}
        if units[0].face.index is not None:
            details = {"faces": [{"index": u.face.index, **u.face.detected.to_dict()} for u in units]}
        task = Task(source, self._outputs(stem, out_dir, prepared), len(units), prepared, list(read.notes), details)
        task.shared = self.shared_outputs(prepared)
        return task

    def shared_outputs(self, prepared: Prepared) -> dict[str, Any]:
        """Each aligned face's crop and sidecar, with the test of an existing file the runner reuses: the same
        crop pixels; the same quad and landmarks (paths and counts vary by command and do not count)."""
        from stylecli.faces.sidecar import same_alignment
        from stylecli.files.images import same_pixels

        shared: dict[str, Any] = {}
        for unit in (u for u in prepared.units if u.face.index is not None):
            crop, detected = unit.face.crop, unit.face.detected
            shared[unit.prefix + "aligned"] = lambda path, crop=crop: same_pixels(path, crop)
            shared[unit.prefix + "alignment"] = lambda path, face=detected: same_alignment(path, face)
        return shared

    needs_photo_of_latent = False  # whether a saved latent's photo is read too (edit --paste-back)

    def no_face_message(self, source: Path) -> str | None:
        """The message for a photo without a face (None: the pipeline's, which suggests --no-align)."""
        return None

    def _latent_stem(self, latent: Path, stem: str) -> str:
        """A saved latent's stem (its name says how it was made), but for a tuned latent rendered without its tuned
        weights (`edit --no-tune`): naming.untuned_stem, not the tuned renders' names."""
        skipped = self.accepts_latents and self.tuner is None and not self.saved_tuning and has_tuned_weights(latent)
        return untuned_stem(stem) if skipped else stem

    def _renders_saved_tuning(self, latent: Path) -> bool:
        """Whether a saved latent renders through the tuned weights beside it."""
        return self.tuner is None and self.saved_tuning and has_tuned_weights(latent)

    # -- model work and writing ---------------------------------------------------------------------------

    def encode(self, units: list[Unit]):
        """The units' codes with their generator weights (pipeline.sources.encode_faces: saved latents as they
        are, crops encoded together in batches and tuned with --tune)."""
        return encode_faces(self.editor, [u.face for u in units], self.tuner, [u.stem for u in units])

    def _tuned(self, unit: Unit) -> bool:
        """Whether `unit` renders through tuned generator weights (--tune, or those saved beside its latent)."""
        return self.tuner is not None or unit.face.tuning is not None

    def weights_outputs(self, unit: Unit, latent: Path) -> dict[str, Path]:
        """The per-photo weights a latent written for `unit` renders with, beside it (write_weights)."""
        return weights_outputs(latent, self.editor.encoder, self._tuned(unit))

    def write_weights(self, unit: Unit, latent: Path, code: np.ndarray, weights: Any, overwrite: bool) -> None:
        """Beside a written latent, the per-photo weights it renders with (write_photo_weights, in the file
        weights_outputs declared); with `overwrite`, a weights file left beside it by an earlier run goes."""
        if self.tuner is not None:
            tuning, base = self.tuner.metadata(), self.tuner.fingerprint(self.editor.generator)
        else:
            tuning = unit.face.tuning
            base = self.editor.generator_fingerprint if tuning is not None else None
        written = write_photo_weights(self.editor, latent, code, weights, tuning, base, overwrite)
        if overwrite:
            remove_stale_weights(latent, keep=written)

    def compute(self, tasks: list[Task]) -> list[list[Any]]:
        units = [u for t in tasks for u in t.data.units]
        results = iter(self.compute_units(units) if units else [])
        return [[next(results) for _ in t.data.units] for t in tasks]

    def compute_units(self, units: list[Unit]) -> list[Any]:
        return [None] * len(units)

    def write(self, task: Task, result: list[Any], overwrite: bool) -> None:
        prepared: Prepared = task.data
        for unit, unit_result in zip(prepared.units, result):
            files = {k[len(unit.prefix):]: v for k, v in task.outputs.items() if k.startswith(unit.prefix)}
            if unit.face.index is not None:
                if task.writes(unit.prefix + "aligned"):
                    write_png(unit.face.crop, files["aligned"], overwrite)
                if task.writes(unit.prefix + "alignment"):
                    self.write_sidecar(task, unit, files["alignment"], overwrite)
            self.write_unit(unit, unit_result, files, overwrite)
        self.write_input(task, result, overwrite)

    def write_sidecar(self, task: Task, unit: Unit, dest: Path, overwrite: bool) -> None:
        """Where the face was in its photo (what `edit NAME.npy --paste-back` reads)."""
        from stylecli.faces import write_sidecar

        prepared: Prepared = task.data
        write_sidecar(dest, task.source, prepared.photo.size, unit.face.index, unit.face.detected, overwrite,
                      found=len(prepared.units))

    def write_unit(self, unit: Unit, result: Any, files: dict[str, Path], overwrite: bool) -> None:
        pass

    def write_input(self, task: Task, results: list[Any], overwrite: bool) -> None:
        pass


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
        from stylecli.encoders.base import capabilities

        super().__init__(editor, options, tuner)
        if save_steps and not capabilities(editor.encoder).more_passes:
            raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
        if save_steps and tuner is not None:
            raise UsageError("--save-steps shows the encoder's passes; it does not combine with --tune")
        self.latent_only = latent_only
        self.save_steps = save_steps

    def unit_outputs(self, stem: str, out_dir: Path) -> dict[str, Path]:
        out = {"latent": latent_path(out_dir, stem)}
        if not self.latent_only:
            out["image"] = inversion_path(out_dir, stem)
        if self.save_steps:  # every pass but the last, which is the reconstruction
            out.update({f"step{t}": step_path(out_dir, stem, t) for t in range(1, self.editor.encoder.steps)})
        # HyperStyle's offsets or the tuned weights, to edit the latent later
        return {**out, **self.weights_outputs(Unit(stem, ""), out["latent"])}

    def compute_units(self, units: list[Unit]) -> list[Inversion]:
        if self.save_steps:
            return self._compute_with_steps(units)
        encoded = self.encode(units)
        per_unit = encoded.weights or [None] * len(units)
        codes = encoded.codes.cpu().numpy()
        if self.latent_only:  # no generator pass: about half the time per face
            return [Inversion(code, None, w) for code, w in zip(codes, per_unit)]
        images = render_variants(self.editor, encoded, [], reconstruct=True).reconstructions
        return [Inversion(code, image, w) for code, image, w in zip(codes, images, per_unit)]

    def _compute_with_steps(self, units: list[Unit]) -> list[Inversion]:
        """--save-steps (never with --tune): the iterative encoder's passes rendered beside the result."""
        from stylecli.encoders.base import step_renders

        encoded = self.editor.encode([u.face.crop for u in units])  # (the passes' codes, which sources do not keep)
        codes, n = encoded.codes.cpu().numpy(), len(units)
        weights = encoded.weights or [None] * n
        images = self.editor.synthesize(encoded.codes, encoded.weights)
        step_codes, step_weights, t = step_renders(self.editor.encoder, encoded)
        rendered = self.editor.synthesize(step_codes, step_weights)
        steps = [list(rendered[i * t : (i + 1) * t]) for i in range(n)]
        return [Inversion(*r) for r in zip(codes, images, weights, steps)]

    def write_unit(self, unit: Unit, result: Inversion, files: dict[str, Path], overwrite: bool) -> None:
        write_latent(result.code, files["latent"], overwrite)
        self.write_weights(unit, files["latent"], result.code, result.weights, overwrite)
        if "image" in files:
            write_png(result.image, files["image"], overwrite)
        for t, image in enumerate(result.steps or [], start=1):
            write_png(image, files[f"step{t}"], overwrite)


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
        from stylecli.pipeline.editor import variant_of

        if self.sweep is not None:  # names sort in sweep order: label_00-4, label_01-3, ...
            edit = self.edits[0][0]
            return [Variant(name, ((edit, s),)) for name, s in zip(sweep_names(edit.label, self.sweep), self.sweep)]
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
            out[variant.name] = variant_path(out_dir, stem, variant.name)
            if self.plan.save_latent:
                out[f"{variant.name}.latent"] = latent_path(out_dir, variant_stem(stem, variant.name))
        base = self.plan.edits[0][0].label
        if self.plan.grid:
            out["grid"] = grid_path(out_dir, stem, base)
        if self.plan.gif:
            out["gif"] = gif_path(out_dir, stem, base)
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
                if unit.face.index is not None:
                    outputs[f"{key}.alignment"] = sidecar_path(out_dir, variant_stem(unit.stem, v.name))
        return outputs

    def input_outputs(self, stem: str, out_dir: Path, prepared: Prepared) -> dict[str, Path]:
        """With --paste-back: one photo per variant with every chosen face of the input edited."""
        if not self.plan.paste_back:
            return {}
        return {f"{v.name}.pasted": pasted_path(out_dir, stem, v.name, self.plan.blend) for v in self.variants}

    @property
    def needs_photo_of_latent(self) -> bool:  # --paste-back of a saved latent: its photo, from the sidecar
        return self.plan.paste_back

    def prepare(self, source: Path, stem: str, out_dir: Path) -> Task:
        task = super().prepare(source, stem, out_dir)
        task.notes = [*task.notes, *self.plan.notes]
        if self.plan.paste_back and task.data.units[0].face.quad is None:
            raise InputError(f"{source}: --paste-back needs to know where the face was: align the photo "
                             "(no --no-align), or keep the .align.json written by `invert` next to the latent")
        return task

    def compute_units(self, units: list[Unit]) -> list[EditResult]:
        out = render_variants(self.editor, self.encode(units), self.variants, reconstruct=self.plan.grid)
        return [EditResult(out.codes[i], list(out.images[i]), out.reconstructions[i] if self.plan.grid else None,
                           weights=out.face_weights(i)) for i in range(len(units))]

    def write_unit(self, unit: Unit, result: EditResult, files: dict[str, Path], overwrite: bool) -> None:
        for variant, image, code in zip(self.variants, result.images, result.codes):
            write_png(image, files[variant.name], overwrite)
            if self.plan.save_latent:
                latent = files[f"{variant.name}.latent"]
                write_latent(code, latent, overwrite)
                self.write_weights(unit, latent, code, result.weights, overwrite)
        if self.plan.grid:
            from stylecli.files.sheets import contact_sheet

            has_input = unit.face.crop is not None
            cells = ([unit.face.crop] if has_input else []) + [result.recon, *result.images]
            labels = (["input"] if has_input else []) + ["inversion"] + [v.name for v in self.variants]
            write_png(contact_sheet(cells, labels), files["grid"], overwrite)
        if self.plan.gif:
            from stylecli.files.sheets import write_gif

            write_gif(list(result.images), files["gif"], overwrite)

    def write(self, task: Task, result: list[Any], overwrite: bool) -> None:
        super().write(task, result, overwrite)
        for unit in (u for u in task.data.units if u.face.index is not None):
            for variant in self.variants:
                dest = task.outputs.get(f"{unit.prefix}{variant.name}.alignment")
                if dest is not None:
                    self.write_sidecar(task, unit, dest, overwrite)

    def write_input(self, task: Task, results: list[EditResult], overwrite: bool) -> None:
        if not self.plan.paste_back:
            return
        prepared: Prepared = task.data
        images = np.stack([np.stack(r.images) for r in results])  # [faces, variants, H, W, 3]
        quads = [u.face.quad for u in prepared.units]
        pasted = paste_variants(self.editor, prepared.photo, self.variants, images, quads, self.plan.blend)
        for name, photo in pasted.items():
            write_png(photo, task.outputs[f"{name}.pasted"], overwrite)
