"""HyperStyle behind the `Encoder` seam, and its per-photo weights on disk.

`HyperStyleEncoder`: the W encoder's code, and per photo `HyperStyleWeights`: the generator's tuned weights,
weight * (1 + offset), as `GeneratorWeights`, carrying the offsets in compact form (`HyperStyleState`: one vector
per tuned layer, 35 KB a face at 1024 px) so that a saved latent can be rendered again later without the photo
(`save_state` / `load_state`), tied by `model_fingerprint` to the model that wrote them: its `STORE`, in its
table row (encoders.kinds).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stylecli.domains import named_domain
from stylecli.encoders.base import (
    Capabilities,
    Encoded,
    GeneratorWeights,
    IterativeEncoder,
    LoadedEncoder,
    WeightsStore,
)
from stylecli.encoders.formats.e4e import CheckpointError
from stylecli.encoders.formats.hyperstyle import DEFAULT_STEPS
from stylecli.errors import InputError, UsageError
from stylecli.models.hyperstyle import HyperStyle, HyperStyleState
from stylecli.naming import hyperstyle_offsets_path

WEIGHTS_KIND = "hyperstyle"  # Capabilities.weights_kind of its per-photo weights
STATE_FORMAT = "stylecli-hyperstyle-offsets-3"  # 3: with the model's fingerprint and the latent's sha256
# Written before those records (no release wrote them): refused, saying so.
UNTIED_FORMATS = ("stylecli-hyperstyle-offsets-1", "stylecli-hyperstyle-offsets-2")
FINGERPRINT_SAMPLE = 4096  # values hashed per tensor
FACES_W_ENCODER = "faces_w_encoder"


class HyperStyleWeights(dict):
    """GeneratorWeights of one photo (parameter name -> weight * (1 + offset)) and the compact offsets they came
    from (`state`), plus the compact offsets after each pass (`steps`), for rendering every pass."""

    weights_kind = WEIGHTS_KIND  # stored as compact offsets beside the latent (save_state)

    def __init__(self, weights: GeneratorWeights, state: HyperStyleState, steps: list[HyperStyleState]):
        super().__init__(weights)
        self.state = state
        self.steps = steps


class HyperStyleEncoder(IterativeEncoder):
    """A W code from the W encoder, then `steps` hypernetwork passes of per-photo generator weight offsets."""

    capabilities = Capabilities(kind="hyperstyle", label="HyperStyle", passes=DEFAULT_STEPS, more_passes=True,
                                weights_kind=WEIGHTS_KIND, tunable=False, options=frozenset({"steps", "w_encoder"}))
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

    def subnetworks(self) -> dict[str, nn.Module]:
        """The W encoder (once), then per pass the hypernetwork (photo beside the pass's image -> offsets) and the
        generator that renders the pass with them."""
        nets = {"w_encoder": self.model.w_encoder, "hypernet": self.model.hypernet, "decoder": self.model.decoder}
        return {name: net for name, net in nets.items() if net is not None}

    def step_renders(self, encoded: Encoded) -> tuple[Tensor, list[GeneratorWeights | None] | None, int]:
        """Every pass but the last: the W code, photo by photo, with that pass's weights (see base.step_renders)."""
        if encoded.weights is None:
            raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
        per_photo = [w.steps[:-1] for w in encoded.weights]
        n = len(per_photo[0]) if per_photo else 0
        codes = encoded.codes.repeat_interleave(n, dim=0)
        return codes, [self.weights_of(s) for states in per_photo for s in states], n

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
    from stylecli.files.atomic import atomic_path
    from stylecli.files.images import check_free
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


def weights_from_state(encoder: Any, state: HyperStyleState | None) -> HyperStyleWeights | None:
    return None if state is None else encoder.weights_of(state)


def _save(weights: HyperStyleWeights, dest: Path, encoder: HyperStyleEncoder, code: Any, overwrite: bool) -> Path:
    return save_state(weights.state, dest, encoder.fingerprint, code, overwrite)


def _load(path: Path, encoder: HyperStyleEncoder, code: Any) -> HyperStyleState:
    return load_state(path, encoder.model, encoder.fingerprint, code)


# Its per-photo weights on disk: the compact offsets, NAME.hyperstyle.npz beside NAME.npy.
STORE = WeightsStore(WEIGHTS_KIND, output="offsets", label="HyperStyle",
                     hint="--model hyperstyle_ffhq or its --checkpoint", path_of=hyperstyle_offsets_path,
                     save=_save, load=_load, to_weights=weights_from_state)


def recognize(ckpt: dict[str, Any]) -> bool:
    from stylecli.encoders.formats.hyperstyle import is_hyperstyle

    opts = ckpt.get("opts")
    return isinstance(opts, dict) and is_hyperstyle(opts)


def load(path: Path | str, ckpt: dict[str, Any], options: dict[str, Any]) -> LoadedEncoder:
    """A HyperStyle checkpoint already read. options: steps (default: the checkpoint's n_iters_per_batch, 5),
    w_encoder (its W encoder file; default: the registry's faces_w_encoder, downloaded on first use)."""
    from stylecli.encoders.formats.e4e import split_checkpoint
    from stylecli.encoders.formats.hyperstyle import hyperstyle_from_state, load_w_encoder

    name = str(Path(path))
    state, opts, latent_avg = split_checkpoint(ckpt, name)
    model = hyperstyle_from_state(state, opts, latent_avg, name)
    model.w_encoder = load_w_encoder(_w_encoder_path(options.get("w_encoder"), opts, name), model.n_styles)
    steps = options.get("steps")
    n = steps if steps is not None else int(opts.get("n_iters_per_batch") or DEFAULT_STEPS)
    return LoadedEncoder(HyperStyleEncoder(model, n), model.decoder, opts, "hyperstyle", Path(path))


def _w_encoder_path(given: Path | str | None, opts: dict[str, Any], name: str) -> Path:
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise CheckpointError(f"--w-encoder {path}: no such file")
        return path
    if "dataset_type" in opts and named_domain(opts) != "ffhq":  # the registry's W encoder is for faces
        raise CheckpointError(f"{name}: a HyperStyle model for {opts.get('dataset_type')}: give its W encoder "
                              "with --w-encoder PATH")
    from stylecli.registry import weights

    return weights.resolve(FACES_W_ENCODER)
