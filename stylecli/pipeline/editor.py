"""The editing pipeline: one object that takes photos through every stage, in this order.

    read -> detect -> align -> encode -> [tune] -> edit -> synthesize -> paste back

Each stage is a method that can be called on its own; `FaceEditor.__call__` runs them all and returns typed
results (stylecli.pipeline.results). The CLI jobs, evaluation and any other front end call these same methods.

    from stylecli import FaceEditor
    editor = FaceEditor.from_pretrained("e4e_ffhq")
    result = editor(["photo.jpg"], edits=[("age", 3), ("smile", -2)], paste_back=True)[0]
    result.faces[0].edits[0].image, result.pasted["age+3"]

Two seams for what comes next (see stylecli.encoders.base): `editor.encoder` is any `Encoder` (e4e and pSp here;
iterative or weight-predicting encoders plug in the same way), and every renderer takes optional per-photo
`GeneratorWeights`, so an encoder or a tuning stage can hand the generator's replacement parameters for one
photo to `synthesize` without copying the generator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stylecli.constants import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from stylecli.convert import ENCODER_INPUT_SIZE, preprocess, to_uint8
from stylecli.devices import PRECISIONS, cpu_supports, precision_context, resolve_device
from stylecli.domains import domain_of
from stylecli.editing.base import Edit
from stylecli.encoders.base import Encoded, Encoder, GeneratorWeights
from stylecli.encoders.e4e import E4EEncoder
from stylecli.errors import InputError, StyleCliError, UsageError
from stylecli.naming import is_latent, variant_name
from stylecli.pipeline.results import EditedFace, FaceResult, Photo, PhotoResult, Variant

if TYPE_CHECKING:
    from stylecli.encoders.loader import LoadedModel
    from stylecli.faces import Face
    from stylecli.models.stylegan2 import Generator
    from stylecli.tuning.stage import Tuner

__all__ = ["ENCODER_INPUT_SIZE", "PRECISIONS", "FaceEditor", "cpu_supports", "precision_context", "preprocess",
           "resolve_device", "to_uint8"]

PhotoLike = str | Path | np.ndarray | Photo
# One edit: a direction spec ("age", "ganspace:smile", "sefa:3", "my_direction.npy") or an Edit, alone (its
# default strength) or with a strength.
EditLike = str | Edit | tuple[str | Edit, float]
# One output variant: an EditLike, several EditLikes applied together (a list), or a ready Variant.
VariantLike = EditLike | list[EditLike] | Variant


def variant_of(steps: Sequence[tuple[Edit, float | None]]) -> Variant:
    """A Variant named as its files are (naming.variant_name: age+3_smile-2)."""
    name = variant_name((e.label, e.default_strength if s is None else s) for e, s in steps)
    return Variant(name, tuple(steps))


def checkpoint_domain(path: Path) -> str | None:
    """The domain of a local e4e / pSp / ReStyle / HyperStyle file, from its opts (no model is built)."""
    return checkpoint_facts(path)[0]


def checkpoint_facts(path: Path) -> tuple[str | None, int | None]:
    """The domain and the style count (from latent_avg; None when it has none) of a local checkpoint."""
    from stylecli.files.checkpoints import read_checkpoint

    ckpt = read_checkpoint(path)
    opts = ckpt.get("opts") if isinstance(ckpt.get("opts"), dict) else {}
    avg = ckpt.get("latent_avg")
    n_styles = avg.shape[0] if isinstance(avg, torch.Tensor) and avg.dim() == 2 else None
    return domain_of(opts, n_styles), n_styles


class FaceEditor:
    """Encoder + generator on a device, with the face stages around them.

    encoder: an `Encoder` (None: only the photo stages read / detect / align / paste_back work).
    generator: the StyleGAN2 `Generator` the codes are rendered with.
    batch_size: faces per encoder / generator call (default: 8 on CUDA, 4 on MPS, 1 on CPUs).
    precision: fp32, or bf16 / fp16 autocast.
    domain: what the generator was trained on (ffhq, cars, horse, church), for direction checks; None when
        unknown (registry directions of any domain are then allowed, their shape still checked). from_pretrained
        takes the registry entry's domain; from_checkpoint the checkpoint's (see `domain_of`).
    """

    def __init__(
        self,
        encoder: Encoder | None,
        generator: Generator | None,
        device: str | torch.device = "auto",
        *,
        batch_size: int | None = None,
        precision: str = "fp32",
        domain: str | None = None,
        source: Path | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        detector_upsample: int | None = None,
    ):
        self.device = resolve_device(device)
        precision_context(self.device, precision)  # validates the name and the hardware
        self.precision = precision
        self.encoder = _ready(encoder, self.device)
        self.generator = _ready(generator, self.device)
        self.batch_size = batch_size or self.default_batch_size
        self.domain = domain
        self.source = source
        self.max_pixels = max_pixels
        self.detector_upsample = detector_upsample
        self._aligner = None
        self._aligner_lock = threading.Lock()
        self._generator_fingerprint: str | None = None

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, device: str | torch.device = "auto", **options: Any) -> FaceEditor:
        """From a loaded e4e / pSp checkpoint. options: batch_size, precision, max_pixels, detector_upsample."""
        options.setdefault("domain", domain_of(loaded.opts, loaded.model.decoder.n_latent))
        return cls(E4EEncoder.from_model(loaded.model), loaded.model.decoder, device, source=loaded.source,
                   **options)

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | torch.device = "auto", *, steps: int | None = None,
                        w_encoder: Path | str | None = None, note: Callable[[str], None] | None = None,
                        **options: Any) -> FaceEditor:
        """From a checkpoint file of any encoder kind in its official format: e4e / pSp, ReStyle, HyperStyle (see
        stylecli.encoders.kinds). steps: ReStyle / HyperStyle passes (default: the checkpoint's, 5);
        w_encoder: HyperStyle's W encoder file (default: the registry's faces_w_encoder); note: told when a
        fast-loading copy of the file is kept in the cache. options: batch_size, precision."""
        from stylecli.encoders.kinds import load_encoder

        loaded = load_encoder(path, steps=steps, w_encoder=w_encoder)
        if loaded.converted is not None and note is not None:
            size = loaded.converted.stat().st_size / 1e6
            note(f"kept a fast-loading copy of {path} ({size:.0f} MB) in {loaded.converted.parent}; "
                 "`stylecli cache clean` removes it")
        return cls.from_fidelity(loaded, device, **options)

    @classmethod
    def from_fidelity(cls, loaded: Any, device: str | torch.device = "auto", **options: Any) -> FaceEditor:
        """From a loaded checkpoint of any encoder kind (encoders.base.LoadedEncoder)."""
        options.setdefault("domain", loaded.domain)
        return cls(loaded.encoder, loaded.generator, device, source=loaded.source, **options)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, device: str | torch.device = "auto",
                        **options: Any) -> FaceEditor:
        """From a registry model (weights.toml), downloaded and verified on first use. Its domain is the
        registry entry's (the checkpoint's own opts may carry the training default, ffhq_encode)."""
        from stylecli.encoders.kinds import pretrained_checkpoint

        path, domain = pretrained_checkpoint(name, {k: options.get(k) for k in ("steps", "w_encoder")})
        if domain:
            options.setdefault("domain", domain)
        return cls.from_checkpoint(path, device, **options)

    # -- what the models are ------------------------------------------------------------------------------

    @property
    def n_styles(self) -> int:
        return self._need_generator().n_latent

    @property
    def style_dim(self) -> int:
        return self._need_generator().style_dim

    @property
    def size(self) -> int:
        """The generator's output size in pixels."""
        return self._need_generator().size

    def settings_tag(self, tuner: Tuner | None = None) -> str:
        """What the output names of photos get for this model's settings (naming.settings_tag: `_steps3_fp16`) and
        pivotal tuning's (`_tuned-s100`)."""
        from stylecli.encoders.formats.restyle import DEFAULT_STEPS
        from stylecli.naming import settings_tag

        steps = getattr(self.encoder, "steps", None)
        return settings_tag(steps, DEFAULT_STEPS, self.precision, tuner.name_tag() if tuner is not None else "")

    @property
    def generator_fingerprint(self) -> str:
        """The shared generator's fingerprint (what tuned weights are checked against), computed once."""
        if self._generator_fingerprint is None:
            from stylecli.tuning import fingerprint

            self._generator_fingerprint = fingerprint(self._need_generator())
        return self._generator_fingerprint

    @property
    def default_batch_size(self) -> int:
        """Faces per model call: larger batches pay on GPUs; on CPUs they do not (and delay the first result)."""
        return {"cuda": 8, "mps": 4}.get(self.device.type, 1)

    # -- 1. read ------------------------------------------------------------------------------------------

    def read(self, source: PhotoLike) -> Photo:
        """A file (EXIF orientation, modes, size limit applied) or a uint8 [H, W, 3] array -> Photo."""
        if isinstance(source, Photo):
            return source
        if isinstance(source, np.ndarray):
            if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
                raise InputError(f"expected a uint8 [H, W, 3] array, got {source.dtype} {list(source.shape)}")
            return Photo(source)
        from stylecli.files.images import read_image

        loaded = read_image(Path(source), self.max_pixels)
        return Photo(loaded.pixels, Path(source), loaded.notes)

    # -- 2. detect ----------------------------------------------------------------------------------------

    def detect(self, photo: PhotoLike, upsample: int | None = None) -> list[Face]:
        """Faces (box, landmarks, FFHQ quad) in the photo, largest first.

        For a JPEG file the landmarks are found on dlib's own decoding of it, as the official alignment does
        (their crop still comes from Pillow's pixels): the two decoders differ on 4:2:0 JPEGs."""
        from stylecli.faces import landmark_pixels_for

        photo = self.read(photo)
        landmark_pixels = landmark_pixels_for(photo.source, photo.pixels) if photo.source is not None else None
        return self.aligner.detect(photo.pixels, self.detector_upsample if upsample is None else upsample,
                                   landmark_pixels=landmark_pixels)

    @property
    def aligner(self):
        """dlib's detector and landmark model, loaded on first use (one per editor, shared by threads)."""
        with self._aligner_lock:
            if self._aligner is None:
                from stylecli.faces import FaceAligner

                self._aligner = FaceAligner()
            return self._aligner

    @aligner.setter
    def aligner(self, value) -> None:
        self._aligner = value

    # -- 3. align -----------------------------------------------------------------------------------------

    def align(self, photo: PhotoLike, face: Face | np.ndarray, size: int = ENCODER_INPUT_SIZE) -> np.ndarray:
        """The FFHQ crop of one face (a Face or its [4, 2] quad) as uint8 [size, size, 3]. size=256 is the
        encoder's input; the generator's size (e.g. 1024) gives a target at full resolution."""
        from stylecli.faces import align_crop

        quad = face if isinstance(face, np.ndarray) else face.quad
        return align_crop(self.read(photo).pixels, quad, size)

    # -- 4. encode ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, crops: Sequence[np.ndarray] | torch.Tensor) -> Encoded:
        """Aligned crops (uint8 [H, W, 3] each, resized to 256) or a normalized tensor [B, 3, 256, 256] ->
        Encoded, in chunks of batch_size across everything given (faces of several photos share a call)."""
        encoder = self._need_encoder()
        x = crops if isinstance(crops, torch.Tensor) else None
        n = len(crops)
        parts = []
        for i in range(0, n, self.batch_size):
            chunk = x[i : i + self.batch_size] if x is not None else torch.stack(
                [preprocess(c) for c in crops[i : i + self.batch_size]])
            with precision_context(self.device, self.precision):
                out = encoder.encode(chunk.to(self.device))
            out.codes = out.codes.float()
            parts.append(out)
        if not parts:
            return Encoded(torch.empty(0, self.n_styles, self.style_dim, device=self.device))
        return Encoded.concat(parts)

    # -- 4b. tune (optional) -------------------------------------------------------------------------------

    def target(self, photo: PhotoLike, face: Face | np.ndarray | None = None) -> np.ndarray:
        """The face at the generator's resolution (the same FFHQ quad warped to `size` px): what tuning fits.
        Without a face, the photo is an aligned crop already and is resized."""
        from stylecli.tuning.stage import full_size_target

        quad = face if isinstance(face, np.ndarray) or face is None else face.quad
        return full_size_target(self.read(photo).pixels, quad, self.size)

    def tune(self, targets: Sequence[np.ndarray], encoded: Encoded, tuner: Tuner,
             labels: Sequence[str] | None = None) -> Encoded:
        """Pivotal tuning, face by face: the pivots (the encoded codes, or PTI's W projections) as codes, with
        per-face GeneratorWeights that make each pivot render its target (see `target`)."""
        w_avg = getattr(self.encoder, "latent_avg", None)
        tuned, _ = tuner.tune_faces(self._need_generator(), targets, encoded,
                                    None if w_avg is None else w_avg[:1], labels)
        return tuned

    # -- 5. edit ------------------------------------------------------------------------------------------

    def resolve_edit(self, spec: str, layers: tuple[int, ...] | None = None) -> Edit:
        """A direction spec (see `stylecli directions`) -> an Edit for this model (shape and domain checked)."""
        from stylecli.editing import resolve_edit

        return resolve_edit(spec, self.n_styles, self.generator, layers, domain=self.domain)

    def keep(self, steps: Sequence[tuple[Edit, float | None]], kept: Sequence[str | Edit]
             ) -> tuple[list[tuple[Edit, float | None]], list[str]]:
        """Conditional edits (--keep): each edit moves along the part of its direction orthogonal to the kept
        directions (unit length, times the strength), with one note per edit giving the cosine between its
        original and projected direction. GANSpace edits (target coordinates) are refused."""
        from stylecli.editing import condition_edits

        return condition_edits(steps, [self.resolve_edit(k) if isinstance(k, str) else k for k in kept])

    def variants(self, edits: Iterable[VariantLike]) -> list[Variant]:
        """Normalize edits: each item is one output variant (a list of edits is applied together)."""
        return [item if isinstance(item, Variant) else variant_of(
            [self._edit_step(e) for e in (item if isinstance(item, list) else [item])]) for item in edits]

    def _edit_step(self, item: EditLike) -> tuple[Edit, float | None]:
        edit, strength = (item if isinstance(item, tuple) else (item, None))
        if isinstance(edit, str):
            edit = self.resolve_edit(edit)
        return edit, (None if strength is None else float(strength))

    @torch.inference_mode()
    def edit(self, codes: torch.Tensor, edits: Iterable[VariantLike]) -> torch.Tensor:
        """W+ codes [B, n, d] -> edited codes [B, V, n, d], one per variant (in the order given)."""
        from stylecli.editing import apply_edits

        codes = self.check_codes(codes)
        variants = self.variants(edits)
        if not variants:
            return codes.new_empty(len(codes), 0, *codes.shape[1:])
        return torch.stack([apply_edits(codes, list(v.steps)) for v in variants], dim=1)

    def check_codes(self, codes: torch.Tensor | np.ndarray, source: Any = None) -> torch.Tensor:
        """Codes as float32 [B, n_styles, style_dim] on the device; a code of another model is an InputError
        ("wide.npy: latent is [14, 256]; this model takes [14, 512]")."""
        codes = torch.as_tensor(codes, dtype=torch.float32).to(self.device)
        if codes.ndim == 2:
            codes = codes.unsqueeze(0)
        want = (self.n_styles, self.style_dim)
        if codes.ndim != 3 or tuple(codes.shape[1:]) != want:
            shape = list(codes.shape[1:] if codes.ndim == 3 else codes.shape)
            what = f"{source}: latent" if source is not None else "latent"
            raise InputError(f"{what} is {shape}; this model takes {list(want)}")
        return codes

    # -- 6. synthesize --------------------------------------------------------------------------------------

    @torch.inference_mode()
    def render(self, codes: torch.Tensor | np.ndarray,
               weights: Sequence[GeneratorWeights | None] | None = None) -> torch.Tensor:
        """W+ codes [B, n, d] -> the generator's float images [B, 3, size, size] (stored noise: deterministic).

        weights[i] (GeneratorWeights) replaces generator parameters for code i alone: those codes are rendered
        one at a time through torch.func.functional_call; the others share batched calls of batch_size."""
        generator = self._need_generator()
        codes = self.check_codes(codes)
        if weights is not None and len(weights) != len(codes):
            raise ValueError(f"{len(weights)} generator weights for {len(codes)} codes")
        own = [i for i in range(len(codes)) if weights is not None and weights[i] is not None]
        shared = sorted(set(range(len(codes))) - set(own))
        out: list[torch.Tensor | None] = [None] * len(codes)
        with precision_context(self.device, self.precision):
            for start in range(0, len(shared), self.batch_size):
                index = shared[start : start + self.batch_size]
                for i, image in zip(index, generator(codes[index], input_is_latent=True, randomize_noise=False)):
                    out[i] = image.float()
            for i in own:
                params = {k: v.to(self.device) for k, v in weights[i].items()}
                image = torch.func.functional_call(generator, params, (codes[i : i + 1],),
                                                   {"input_is_latent": True, "randomize_noise": False}, strict=False)
                out[i] = image[0].float()
        if not out:
            return torch.empty(0, 3, self.size, self.size, device=self.device)
        return torch.stack(out)

    def synthesize(self, codes: torch.Tensor | np.ndarray,
                   weights: Sequence[GeneratorWeights | None] | None = None) -> np.ndarray:
        """W+ codes -> uint8 images [B, size, size, 3] (see render), converted chunk by chunk."""
        codes = self.check_codes(codes)
        step = self.batch_size
        parts = [to_uint8(self.render(codes[i : i + step], None if weights is None else weights[i : i + step]))
                 for i in range(0, len(codes), step)]
        return np.concatenate(parts) if parts else np.zeros((0, self.size, self.size, 3), np.uint8)

    # -- 7. paste back --------------------------------------------------------------------------------------

    def paste_back(self, photo: PhotoLike, images: Sequence[np.ndarray], quads: Sequence[np.ndarray],
                   blend: str = "feather") -> np.ndarray:
        """The photo with each image (an aligned face, any size) blended in through its quad's inverse warp."""
        from stylecli.faces import paste_back

        out = self.read(photo).pixels
        for image, quad in zip(images, quads):
            out = paste_back(out, image, quad, blend=blend)
        return out

    def example_codes(self, paths: Sequence[Path], align: bool = True,
                      progress: Callable[[int, int], None] | None = None) -> Any:
        """The codes of example inputs (photos and saved latents) for `directions learn`, through the sources:
        an editing.learn.Examples (codes, and one message per input that gave none)."""
        from stylecli.pipeline.examples import example_codes

        return example_codes(paths, self, align, progress)

    # -- everything ---------------------------------------------------------------------------------------

    def __call__(
        self,
        photos: PhotoLike | Sequence[PhotoLike],
        edits: Iterable[VariantLike] = (),
        *,
        faces: str = "largest",
        align: bool = True,
        paste_back: bool = False,
        blend: str = "feather",
        reconstruct: bool = True,
        keep: Sequence[str | Edit] = (),
        tuner: Tuner | None = None,
    ) -> list[PhotoResult]:
        """Run every stage on photos (paths, uint8 arrays, Photos or saved latents) and return one PhotoResult per
        photo (pipeline.sources reads them, pipeline.render renders them).

        faces: largest, all, or an index (0 = largest). align=False: each photo is an aligned crop already.
        edits: one item per output variant (see `variants`). paste_back: also each variant as a whole photo
        (needs align: a photo given as a crop has no place to paste into).
        keep: directions every edit must not move along (see `keep`); the cosines go into each result's notes.
        tuner: pivotal tuning (stylecli.tuning.Tuner) between encoding and editing; edits render through it.
        A photo that cannot be used (unreadable, no face found) gets its message in PhotoResult.error and no
        faces; the other photos are still computed.
        """
        from stylecli.pipeline.render import paste_variants, render_variants
        from stylecli.pipeline.sources import add_tuning_targets, encode_faces, open_source

        if paste_back and not align:
            raise UsageError("paste_back=True needs align=True: a photo given as an aligned crop (align=False) has "
                             "no place in a larger photo to paste the edited face back into")
        if isinstance(photos, (str, Path, np.ndarray, Photo)):
            photos = [photos]
        variants = self.variants(edits)
        keep_notes: list[str] = []
        if keep:
            variants, keep_notes = self._keep_variants(variants, keep)
        results, sources = [], []
        for item in photos:
            photo = None  # read first, so that a photo without a face keeps its pixels and notes in the result
            try:
                photo = item if isinstance(item, (str, Path)) and is_latent(item) else self.read(item)
                source = open_source(self, photo, align=align, faces=faces, photo_of_latent=paste_back)
                if tuner is not None:
                    add_tuning_targets(self, source)
            except InputError as exc:
                if isinstance(photo, Photo):
                    results.append(PhotoResult(photo.source, photo.pixels, photo.notes + keep_notes, error=str(exc)))
                else:
                    given = item.source if isinstance(item, Photo) else Path(item) if isinstance(item, (str, Path)) \
                        else None
                    results.append(PhotoResult(given, None, error=str(exc)))
                continue
            pixels = None if source.photo is None else source.photo.pixels
            results.append(PhotoResult(source.path, pixels, source.notes + keep_notes))
            sources.append((results[-1], source))
        faces_in_order = [f for _, s in sources for f in s.faces]
        rendered = render_variants(self, encode_faces(self, faces_in_order, tuner), variants, reconstruct)
        i = 0
        for result, source in sources:
            for face in source.faces:
                found = face.detected
                result.faces.append(FaceResult(
                    face.index or 0, face.crop, rendered.base[i], rendered.reconstructions[i] if reconstruct else None,
                    [EditedFace(v.name, rendered.codes[i, k], rendered.images[i, k]) for k, v in enumerate(variants)],
                    box=None if found is None else found.box, landmarks=None if found is None else found.landmarks,
                    quad=face.quad, weights=rendered.face_weights(i)))
                i += 1
            if paste_back and result.faces:
                first = i - len(source.faces)
                result.pasted = paste_variants(self, source.photo, variants, rendered.images[first:i],
                                               [f.quad for f in source.faces], blend)
        return results

    # -- helpers ------------------------------------------------------------------------------------------

    def _keep_variants(self, variants: list[Variant], kept: Sequence[str | Edit]) -> tuple[list[Variant], list[str]]:
        kept = [self.resolve_edit(k) if isinstance(k, str) else k for k in kept]
        out, notes = [], []
        for variant in variants:
            steps, more = self.keep(variant.steps, kept)
            out.append(Variant(variant.name, tuple(steps)))
            notes += more
        return out, list(dict.fromkeys(notes))

    def _need_encoder(self) -> Encoder:
        if self.encoder is None:
            raise StyleCliError("this FaceEditor has no encoder (build it with from_checkpoint / from_pretrained)")
        return self.encoder

    def _need_generator(self) -> Generator:
        if self.generator is None:
            raise StyleCliError("this FaceEditor has no generator (build it with from_checkpoint / from_pretrained)")
        return self.generator


def _ready(module: Any, device: torch.device) -> Any:
    """A module moved to the device in eval mode without gradients (anything else is returned as is)."""
    if isinstance(module, torch.nn.Module):
        return module.to(device).eval().requires_grad_(False)
    return module
