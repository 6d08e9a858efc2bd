"""ReStyle behind the `Encoder` seam: the code after `steps` passes; `Encoded.steps` holds the code after every
pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stylecli.encoders.base import Capabilities, Encoded, GeneratorWeights, IterativeEncoder, LoadedEncoder
from stylecli.encoders.formats.restyle import DEFAULT_STEPS
from stylecli.errors import UsageError
from stylecli.models.restyle import ReStyle


class ReStyleEncoder(IterativeEncoder):
    """Iterative refinement: each pass sees the photo beside the previous pass's pooled image."""

    capabilities = Capabilities(kind="restyle", label="ReStyle", passes=DEFAULT_STEPS, more_passes=True,
                                options=frozenset({"steps"}))
    model: ReStyle

    def encode(self, x: Tensor) -> Encoded:
        # the last pass is not rendered here: the pipeline renders the final code itself
        passes = list(self.model.iterate(x, self.steps, render_last=False))
        return Encoded(passes[-1].codes, steps=[p.codes for p in passes])

    def subnetworks(self) -> dict[str, nn.Module]:
        """Per pass: the encoder (photo beside the previous pass's image -> code residual), then the generator
        that renders the pass's code for the next one."""
        return {"encoder": self.model.encoder, "decoder": self.model.decoder}

    def step_renders(self, encoded: Encoded) -> tuple[Tensor, list[GeneratorWeights | None] | None, int]:
        """Every pass but the last: its codes, photo by photo (see base.step_renders)."""
        if encoded.steps is None:
            raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
        steps = encoded.steps[:-1]
        codes = torch.stack(steps, 1).flatten(0, 1) if steps else encoded.codes[:0]
        return codes, None, len(steps)


def recognize(ckpt: dict[str, Any]) -> bool:
    from stylecli.encoders.formats.restyle import is_restyle

    opts = ckpt.get("opts")
    return isinstance(opts, dict) and is_restyle(opts)


def load(path: Path | str, ckpt: dict[str, Any], options: dict[str, Any]) -> LoadedEncoder:
    """A ReStyle checkpoint already read. options: steps (default: the checkpoint's n_iters_per_batch, 5)."""
    from stylecli.encoders.formats.e4e import split_checkpoint
    from stylecli.encoders.formats.restyle import restyle_from_state

    name = str(Path(path))
    state, opts, latent_avg = split_checkpoint(ckpt, name)
    if "w_encoder" in options:
        raise UsageError(f"--w-encoder: {name} is a ReStyle checkpoint, which needs no W encoder (HyperStyle does)")
    model, _ = restyle_from_state(state, opts, latent_avg, name)
    steps = options.get("steps")
    n = steps if steps is not None else int(opts.get("n_iters_per_batch") or DEFAULT_STEPS)
    return LoadedEncoder(ReStyleEncoder(model, n), model.decoder, opts, "restyle", Path(path))
