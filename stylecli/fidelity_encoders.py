"""ReStyle and HyperStyle behind the pipeline's `Encoder` seam, and loading them from files or the registry.

- `ReStyleEncoder`: the code after `steps` passes; `Encoded.steps` holds the code after every pass.
- `HyperStyleEncoder`: the W encoder's code, and per photo `HyperStyleWeights`: the generator's tuned weights,
  weight * (1 + offset), as `GeneratorWeights`, carrying the offsets in compact form (`HyperStyleState`: one
  vector per tuned layer, 35 KB a face at 1024 px) so that a saved latent can be rendered again later without
  the photo (`save_state` / `load_state`), tied by `model_fingerprint` to the model that wrote them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stylecli.checkpoint import CheckpointError
from stylecli.encoders import Encoded, GeneratorWeights
from stylecli.errors import InputError, UsageError
from stylecli.models.hyperstyle import HyperStyle, HyperStyleState
from stylecli.models.restyle import ReStyle
from stylecli.models.stylegan2 import Generator

STATE_SUFFIX = ".hyperstyle.npz"  # NAME.npy -> NAME.hyperstyle.npz
STATE_FORMAT = "stylecli-hyperstyle-offsets-3"  # 3: with the model's fingerprint and the latent's sha256
# Written before those records (no release wrote them): refused, saying so.
UNTIED_FORMATS = ("stylecli-hyperstyle-offsets-1", "stylecli-hyperstyle-offsets-2")
FINGERPRINT_SAMPLE = 4096  # values hashed per tensor
FACES_W_ENCODER = "faces_w_encoder"


def _check_steps(steps: int) -> int:
    if steps < 1:
        raise UsageError(f"--steps {steps}: needs at least 1 pass")
    return steps


class _IterativeEncoder(nn.Module):
    """An encoder that refines over `steps` passes of its model (ReStyle, HyperStyle)."""

    def __init__(self, model: ReStyle | HyperStyle, steps: int = 5):
        super().__init__()
        self.model = model
        self.steps = _check_steps(steps)

    @property
    def n_styles(self) -> int:
        return self.model.n_styles


class ReStyleEncoder(_IterativeEncoder):
    """Iterative refinement: each pass sees the photo beside the previous pass's pooled image."""

    model: ReStyle

    def encode(self, x: Tensor) -> Encoded:
        # the last pass is not rendered here: the pipeline renders the final code itself
        passes = list(self.model.iterate(x, self.steps, render_last=False))
        return Encoded(passes[-1].codes, steps=[p.codes for p in passes])


class HyperStyleWeights(dict):
    """GeneratorWeights of one photo (parameter name -> weight * (1 + offset)) and the compact offsets they came
    from (`state`), plus the compact offsets after each pass (`steps`), for rendering every pass."""

    def __init__(self, weights: GeneratorWeights, state: HyperStyleState, steps: list[HyperStyleState]):
        super().__init__(weights)
        self.state = state
        self.steps = steps


class HyperStyleEncoder(_IterativeEncoder):
    """A W code from the W encoder, then `steps` hypernetwork passes of per-photo generator weight offsets."""

    model: HyperStyle
    _fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The model's `model_fingerprint`, computed once (saved offsets are written and checked with it)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint

    def encode(self, x: Tensor) -> Encoded:
        codes = self.model.w_codes(x)
        passes = list(self.model.iterate(x, codes, self.steps, render_last=False))
        last = passes[-1]
        weights = [HyperStyleWeights(self.model.generator_weights(last.offsets, i), last.state.select(i),
                                     [p.state.select(i) for p in passes]) for i in range(len(x))]
        return Encoded(codes, weights=weights)

    def weights_of(self, state: HyperStyleState) -> HyperStyleWeights:
        """A photo's generator weights from its compact offsets (one pass of the heads' affine ends)."""
        device = self.model.latent_avg.device
        state = HyperStyleState([None if c is None else c.to(device) for c in state.codes], state.n_terms)
        with torch.inference_mode():
            offsets = self.model.offsets_of(state)
            return HyperStyleWeights(self.model.generator_weights(offsets, 0), state, [state])


def model_fingerprint(model: HyperStyle) -> str:
    """What rendering saved offsets depends on: the hypernetwork (its heads turn the stored vectors into offsets)
    and the generator they scale, as a sampled `fingerprint` (every name and shape, 4096 values a tensor). The W
    encoder is left out: a saved latent is rendered from its code, without it."""
    from stylecli.tuning.generator_weights import fingerprint

    return fingerprint(nn.ModuleDict({"hypernet": model.hypernet, "decoder": model.decoder}), FINGERPRINT_SAMPLE)


def save_state(state: HyperStyleState, dest: Path, fingerprint: str, code: Any, overwrite: bool = False) -> Path:
    """The compact offsets of one photo as .npz (atomically): `n_terms`, `layer_J` [dim] per tuned generator
    layer J, the `model_fingerprint` of the model that computed them and the sha256 of `code`, the latent they
    are saved beside (`latent_sha256`)."""
    from stylecli.atomic import atomic_path
    from stylecli.images import check_free
    from stylecli.tuning.store import code_digest

    arrays = {f"layer_{j}": c[0].detach().float().cpu().numpy() for j, c in enumerate(state.codes) if c is not None}
    check_free(dest, overwrite)
    with atomic_path(dest, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.savez(f, format=np.array(STATE_FORMAT), model_fingerprint=np.array(fingerprint),
                 latent_sha256=np.array(code_digest(code)), n_terms=np.array(state.n_terms), **arrays)
    return dest


def load_state(path: Path, model: HyperStyle, fingerprint: str | None = None, code: Any = None) -> HyperStyleState:
    """Read what save_state wrote, refused unless `model` (its `model_fingerprint`, or `fingerprint` when given)
    is the model that wrote it and (given `code`, the latent beside the file) it was written for that latent."""
    try:
        with np.load(path, allow_pickle=False) as data:
            kind = str(data["format"])
            if kind in UNTIED_FORMATS:
                raise InputError(f"{path}: HyperStyle offsets from an earlier stylecli, which did not record the "
                                 "latent they belong to; invert the photo again with this model")
            if kind != STATE_FORMAT:
                raise ValueError(f"format {kind}")
            theirs, latent_sha = str(data["model_fingerprint"]), str(data["latent_sha256"])
            n_terms = int(data["n_terms"])
            found = {int(k.split("_")[1]): torch.from_numpy(data[k].astype(np.float32))[None]
                     for k in data.files if k.startswith("layer_")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # a truncated or foreign file
        raise InputError(f"{path}: unreadable HyperStyle offsets ({exc}); invert the photo again") from None
    ours = fingerprint or model_fingerprint(model)
    if theirs != ours:
        raise InputError(f"{path}: offsets written by another HyperStyle model or generator (fingerprint "
                         f"{theirs[:12]}, this model's is {ours[:12]}); edit with the model that inverted the "
                         "photo, or invert it again with this one")
    if code is not None:
        from stylecli.tuning.store import code_digest

        if code_digest(code) != latent_sha:
            raise InputError(f"{path}: offsets written for another latent (the .npy beside them changed since); "
                             "invert the photo again, or keep each latent with its own offsets file")
    blocks = model.hypernet.refinement_blocks
    tuned = {j for j, b in enumerate(blocks) if b is not None}
    if set(found) != tuned or n_terms < 1:
        raise InputError(f"{path}: offsets for layers {sorted(found)}, but this HyperStyle model tunes "
                         f"{sorted(tuned)}: it was written by another model")
    return HyperStyleState([found.get(j) for j in range(len(blocks))], n_terms)


def state_path(latent: Path) -> Path:
    return latent.with_name(latent.stem + STATE_SUFFIX)


def saved_state(encoder: Any, latent: Path, code: Any) -> HyperStyleState | None:
    """The offsets a saved latent (`code`, read from `latent`) is rendered with: for a HyperStyle encoder, those
    of the file `invert` wrote beside the latent; None for the other encoders."""
    path = state_path(Path(latent))
    if not isinstance(encoder, HyperStyleEncoder):
        if path.is_file():  # rendering it without its offsets would silently lose what HyperStyle reconstructed
            raise InputError(f"{latent}: a HyperStyle latent ({path.name} beside it); edit it with the HyperStyle "
                             "model that wrote it (--model hyperstyle_ffhq or its --checkpoint)")
        return None
    if not path.is_file():
        raise InputError(f"{latent}: a HyperStyle latent is rendered with its offsets, {path.name}, which `invert` "
                         "writes beside it; it is missing (invert the photo again, or edit the photo itself)")
    return load_state(path, encoder.model, encoder.fingerprint, code)


def weights_from_state(encoder: Any, state: HyperStyleState | None) -> HyperStyleWeights | None:
    return None if state is None else encoder.weights_of(state)


def step_renders(encoder: Any, encoded: Encoded) -> tuple[Tensor, list[GeneratorWeights | None] | None, int]:
    """What to render for every pass but the last (the last is the reconstruction): codes [B * (T - 1), n, d]
    ordered photo by photo, their generator weights (None: the shared generator), and T - 1."""
    if isinstance(encoder, ReStyleEncoder) and encoded.steps is not None:
        steps = encoded.steps[:-1]
        codes = torch.stack(steps, 1).flatten(0, 1) if steps else encoded.codes[:0]
        return codes, None, len(steps)
    if isinstance(encoder, HyperStyleEncoder) and encoded.weights is not None:
        per_photo = [w.steps[:-1] for w in encoded.weights]
        n = len(per_photo[0]) if per_photo else 0
        codes = encoded.codes.repeat_interleave(n, dim=0)
        return codes, [encoder.weights_of(s) for states in per_photo for s in states], n
    raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")


@dataclass
class LoadedEncoder:
    """What FaceEditor needs from a ReStyle / HyperStyle checkpoint."""

    encoder: ReStyleEncoder | HyperStyleEncoder
    generator: Generator
    opts: dict[str, Any]
    kind: str  # "restyle" or "hyperstyle"
    source: Path | None = None

    @property
    def domain(self) -> str | None:
        """What the generator was trained on, from opts.dataset_type ('ffhq_encode', 'ffhq_hypernet' -> 'ffhq')."""
        kind = self.opts.get("dataset_type")
        if not isinstance(kind, str) or not kind:
            return None
        return kind.removesuffix("_encode").removesuffix("_hypernet")


def checkpoint_kind(path: Path) -> tuple[str, dict[str, Any] | None]:
    """("e4e" | "restyle" | "hyperstyle", the checkpoint dict when it had to be read). A file with a converted
    e4e copy in the cache is e4e without reading it (keeping the e4e loader's fast path)."""
    from stylecli.checkpoint import read_checkpoint
    from stylecli.hyperstyle_checkpoint import is_hyperstyle
    from stylecli.loader import converted_path
    from stylecli.restyle_checkpoint import is_restyle

    path = Path(path)
    if path.is_file() and converted_path(path).is_file():
        return "e4e", None
    ckpt = read_checkpoint(path)
    opts = ckpt.get("opts") if isinstance(ckpt.get("opts"), dict) else {}
    if is_restyle(opts):
        return "restyle", ckpt
    if is_hyperstyle(opts):
        return "hyperstyle", ckpt
    return "e4e", ckpt


def load_encoder(path: Path, ckpt: dict[str, Any], kind: str, steps: int | None = None,
                 w_encoder: Path | str | None = None) -> LoadedEncoder:
    """Build the encoder of a ReStyle / HyperStyle checkpoint already read (see checkpoint_kind). HyperStyle's
    W encoder: `w_encoder`, else the registry's faces_w_encoder (downloaded on first use)."""
    from stylecli.checkpoint import split_checkpoint

    name = str(path)
    state, opts, latent_avg = split_checkpoint(ckpt, name)
    if kind == "restyle":
        from stylecli.restyle_checkpoint import DEFAULT_STEPS, restyle_from_state

        if w_encoder is not None:
            raise UsageError(f"--w-encoder: {name} is a ReStyle checkpoint, which needs no W encoder (HyperStyle does)")
        model, _ = restyle_from_state(state, opts, latent_avg, name)
        n = steps if steps is not None else int(opts.get("n_iters_per_batch") or DEFAULT_STEPS)
        return LoadedEncoder(ReStyleEncoder(model, n), model.decoder, opts, kind, Path(path))
    from stylecli.hyperstyle_checkpoint import DEFAULT_STEPS, hyperstyle_from_state, load_w_encoder

    model = hyperstyle_from_state(state, opts, latent_avg, name)
    model.w_encoder = load_w_encoder(_w_encoder_path(w_encoder, opts, name), model.n_styles)
    n = steps if steps is not None else int(opts.get("n_iters_per_batch") or DEFAULT_STEPS)
    return LoadedEncoder(HyperStyleEncoder(model, n), model.decoder, opts, kind, Path(path))


def refuse_fidelity_options(path: Path | str, steps: int | None, w_encoder: Path | str | None) -> None:
    """--steps / --w-encoder given for a one-pass (e4e / pSp) checkpoint."""
    if steps is not None or w_encoder is not None:
        raise UsageError(f"{path}: an e4e / pSp checkpoint encodes in one pass: --steps and --w-encoder are for "
                            "ReStyle and HyperStyle models")


def _w_encoder_path(given: Path | str | None, opts: dict[str, Any], name: str) -> Path:
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise CheckpointError(f"--w-encoder {path}: no such file")
        return path
    if "ffhq" not in str(opts.get("dataset_type", "ffhq")):
        raise CheckpointError(f"{name}: a HyperStyle model for {opts.get('dataset_type')}: give its W encoder "
                              "with --w-encoder PATH")
    from stylecli import weights

    return weights.resolve(FACES_W_ENCODER)
