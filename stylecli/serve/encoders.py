"""The page's encoder choice: each loaded model's own encoder (e4e, pSp, ReStyle, HyperStyle), and pivotal
tuning (PTI) from each model whose codes `--tune` accepts, with the few steps of an interactive page.

A choice is also what `stylecli edit` needs to invert a face the same way (its model's --model / --checkpoint,
and --tune with the page's tuning settings) and how its output files are named (`_tuned`, `_steps3`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stylecli.constants import SERVE_TUNE_STEPS
from stylecli.errors import InputError, counted

if TYPE_CHECKING:
    from stylecli.serve.backend import Backend
    from stylecli.tuning.stage import Tuner

TUNE_STEPS = SERVE_TUNE_STEPS  # the page's default; PTI's recipe runs up to PTI_STEPS


@dataclass(frozen=True)
class Choice:
    key: str  # the value the `edit` API takes: e4e, restyle, hyperstyle, e4e+tuning (restyle:NAME for a twin)
    name: str  # what the status line calls it: e4e, ReStyle, e4e + tuning
    backend: Backend  # the model that encodes (and renders) the face
    tuner: Tuner | None = None  # pivotal tuning after encoding

    @property
    def label(self) -> str:
        """What the dropdown shows: the name, and how far tuning goes."""
        if self.tuner is None:
            return self.name
        return f"{self.name} (PTI, at most {counted(self.tuner.config.steps, 'step')})"

    @property
    def args(self) -> list[str]:
        """The model and tuning options of the equivalent `stylecli` command."""
        return [*self.backend.model_args, *(tune_args(self.tuner) if self.tuner is not None else [])]

    @property
    def name_tag(self) -> str:
        """What the CLI adds to the output names of a photo inverted this way (`_tuned`, `_steps3`)."""
        return self.backend.editor.settings_tag(self.tuner)


def choices(backends: list[Backend], tuner: Tuner | None = None) -> list[Choice]:
    """Each model's own encoder followed by tuning from it (when `tuner` is given and the model allows it); the
    first is the default."""
    kinds = [b.kind for b in backends]
    out = []
    for backend in backends:
        twin = kinds.count(backend.kind) > 1  # two models of one kind: named by their model
        key = backend.kind.lower() + (f":{backend.name}" if twin else "")
        name = backend.kind + (f" ({backend.name})" if twin else "")
        out.append(Choice(key, name, backend))
        if tuner is not None and backend.tunable:
            out.append(Choice(f"{key}+tuning", f"{name} + tuning", backend, tuner))
    return out


def tune_args(tuner: Tuner) -> list[str]:
    """--tune and the tuning options that differ from the CLI's defaults."""
    from stylecli.tuning import TuningConfig

    config, default = tuner.config, TuningConfig()
    args = ["--tune"]
    if config.steps != default.steps:
        args += ["--tune-steps", str(config.steps)]
    if config.lr != default.lr:
        args += ["--tune-lr", exact(config.lr)]
    if config.lpips_stop != default.lpips_stop:
        args += ["--tune-lpips-stop", exact(config.lpips_stop)]
    return args


def exact(value: float) -> str:
    """The shortest text that reads back as the same float (`:g` keeps only 6 digits): 0.01, 3e-05, 0."""
    text = repr(float(value))
    return text.removesuffix(".0")


def pick(options: list[Choice], key: str | None) -> Choice:
    """The choice named `key` (None: the default); InputError naming the ones there are."""
    if not key:
        return options[0]
    for choice in options:
        if key in (choice.key, choice.name, choice.label):
            return choice
    raise InputError(f"encoder {key!r}: this editor offers {', '.join(c.key for c in options)}")
