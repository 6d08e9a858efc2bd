"""The encoder seam: anything that turns normalized face crops into W+ codes (and, optionally, per-photo
generator weights) plugs into the FaceEditor through the `Encoder` protocol.

- e4e and pSp (one pass, encoders.e4e): codes only.
- Iterative encoders (ReStyle, encoders.restyle) also return the code of every pass in `Encoded.steps`.
- Encoders or stages that adapt the generator to one photo (HyperStyle's weight offsets, PTI's tuning) fill
  `Encoded.weights`: per item of the batch, a `GeneratorWeights` dict of replacement tensors, applied when that
  item is rendered (`FaceEditor.synthesize(codes, weights)`).

What an encoder can do is told by its `Capabilities` (`capabilities(encoder)`), never by its class: any object
with `encode(x) -> Encoded` is an encoder, with a one-pass encoder's capabilities unless it carries its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from stylecli.errors import UsageError

if TYPE_CHECKING:
    from stylecli.models.stylegan2 import Generator

# Parameter name as in the generator's state_dict (e.g. "convs.3.conv.weight") -> the tensor that replaces it
# for one photo (same shape). Parameters not named keep the shared generator's values.
GeneratorWeights = dict[str, Tensor]


@dataclass
class Encoded:
    """What an encoder returns for a batch of B crops.

    codes: W+ codes [B, n_styles, style_dim], mean latent included (what the generator consumes).
    weights: per crop, generator parameter overrides (`GeneratorWeights`) or None; None for the whole
        batch when the encoder never adapts the generator (e4e, pSp).
    steps: for iterative encoders, the codes after each pass ([B, n_styles, style_dim] each); else None.
    """

    codes: Tensor
    weights: list[GeneratorWeights | None] | None = None
    steps: list[Tensor] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @staticmethod
    def concat(parts: list[Encoded]) -> Encoded:
        """Chunks of one batch, joined in order."""
        codes = torch.cat([p.codes for p in parts])
        weights = None
        if any(p.weights is not None for p in parts):
            weights = [w for p in parts for w in (p.weights or [None] * len(p))]
        steps = None
        if parts and all(p.steps is not None for p in parts):
            steps = [torch.cat(s) for s in zip(*(p.steps for p in parts))]
        return Encoded(codes, weights, steps)


@runtime_checkable
class Encoder(Protocol):
    """x: [B, 3, 256, 256] in [-1, 1] (see convert.preprocess) on the encoder's device -> Encoded."""

    n_styles: int

    def encode(self, x: Tensor) -> Encoded: ...


@dataclass(frozen=True)
class Capabilities:
    """What an encoder can do, for the code that uses it (the batch jobs, the browser editor, evaluation).

    kind: its row in the kind table (encoders.kinds); label: what people call it (e4e, pSp, ReStyle, HyperStyle;
        a duck-typed encoder's class name).
    passes: passes it makes by default; more_passes: whether it refines over passes (`--steps`, `--save-steps`).
    weights_kind: the stored kind of the per-photo generator weights it returns in `Encoded.weights` (one per
        item of the batch, e.g. "hyperstyle": compact offsets saved beside a latent), None when it returns none.
    tunable: whether pivotal tuning (`--tune`) may start from its codes.
    options: the loading options it takes (`steps`, `w_encoder`).
    """

    kind: str = "e4e"
    label: str = ""
    passes: int = 1
    more_passes: bool = False
    weights_kind: str | None = None
    tunable: bool = True
    options: frozenset[str] = field(default_factory=frozenset)


ONE_PASS = Capabilities()  # what any object with only `encode` is taken to be (labelled by its class)


def capabilities(encoder: Any) -> Capabilities:
    """The encoder's `capabilities`, or a one-pass encoder's, labelled with its class name, for a duck-typed one
    that carries none."""
    caps = getattr(encoder, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else replace(ONE_PASS, label=type(encoder).__name__)


def subnetworks(encoder: Any) -> dict[str, nn.Module]:
    """The networks an encoder would be exported as, by name, in the order they run: its own `subnetworks()`,
    else the encoder itself as one network when it is a module (a one-pass encoder), else none."""
    own = getattr(encoder, "subnetworks", None)
    if callable(own):
        return dict(own())
    return {"encoder": encoder} if isinstance(encoder, nn.Module) else {}


def weights_kind(weights: Any) -> str | None:
    """The stored kind of one photo's generator weights ("hyperstyle": its compact offsets travel with it), None
    for plain GeneratorWeights (as tuning returns)."""
    return getattr(weights, "weights_kind", None)


def step_renders(encoder: Any, encoded: Encoded) -> tuple[Tensor, list[GeneratorWeights | None] | None, int]:
    """What to render for every pass but the last (the last is the reconstruction): codes [B * (T - 1), n, d]
    ordered photo by photo, their generator weights (None: the shared generator), and T - 1."""
    own = getattr(encoder, "step_renders", None)
    if not capabilities(encoder).more_passes or own is None:
        raise UsageError("--save-steps: this model encodes in one pass (use a ReStyle or HyperStyle model)")
    return own(encoded)


def check_steps(steps: int) -> int:
    if steps < 1:
        raise UsageError(f"--steps {steps}: needs at least 1 pass")
    return steps


class IterativeEncoder(nn.Module):
    """An encoder that refines over `steps` passes of its model (ReStyle, HyperStyle)."""

    def __init__(self, model: nn.Module, steps: int = 5):
        super().__init__()
        self.model = model
        self.steps = check_steps(steps)

    @property
    def n_styles(self) -> int:
        return self.model.n_styles


@dataclass(frozen=True)
class WeightsStore:
    """How an encoder kind keeps a photo's generator weights (`Capabilities.weights_kind`) on disk: in one file
    beside the latent they render, tied to the model that computed them and to the latent's values, so that a
    saved latent renders again without the photo. Its kind's table row carries it (encoders.kinds.weights_store).

    kind: the `Capabilities.weights_kind` it stores; output: the file's name among a job's outputs ("offsets");
    label: the encoder's name in messages ("HyperStyle"); hint: how to choose that model (--model, --checkpoint).
    path_of: the latent's path -> the file's. save: (weights of one photo, path, encoder, code of the latent,
    overwrite) -> the path written. load: (path, encoder, code) -> the compact state, refused unless that encoder
    wrote it for that code. to_weights: (encoder, state) -> the photo's GeneratorWeights.
    """

    kind: str
    output: str
    label: str
    hint: str
    path_of: Callable[[Path], Path]
    save: Callable[[Any, Path, Any, Any, bool], Path]
    load: Callable[[Path, Any, Any], Any]
    to_weights: Callable[[Any, Any], Any]


@dataclass
class LoadedEncoder:
    """A checkpoint of any kind, loaded (encoders.kinds.load_encoder): what the FaceEditor needs."""

    encoder: Encoder
    generator: Generator
    opts: dict[str, Any]
    kind: str  # its row in the kind table
    source: Path | None = None
    converted: Path | None = None  # a fast-loading copy written by this load (stylecli cache clean removes it)
    named_domain: str | None = None  # the registry entry's domain, when it names one (see `domain`)

    @property
    def domain(self) -> str | None:
        """What the generator was trained on: the registry entry's domain when loaded by name and it names one
        (the checkpoint's own opts may carry the training default, ffhq_encode), else from opts.dataset_type
        (see domains.domain_of)."""
        if self.named_domain:
            return self.named_domain
        from stylecli.domains import domain_of

        return domain_of(self.opts, self.generator.n_latent)
