"""The encoder kinds: one table from kind to how a checkpoint of it is recognized and loaded, its encoder class
and the store of its per-photo generator weights. Loading any checkpoint goes through it, and so does reading or
writing the weights file beside a latent (`weights_store`).

A new kind is a row: `register_kind(Kind(...))` (a plugin, a test) or one line in `KINDS`. Rows are tried in
order; e4e / pSp, which claims anything, comes last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecli.encoders import e4e, hyperstyle, restyle
from stylecli.encoders.base import Capabilities, LoadedEncoder, WeightsStore, capabilities
from stylecli.errors import UsageError


@dataclass(frozen=True)
class Kind:
    """One encoder kind.

    recognize: the checkpoint dict (as read from its file) -> whether it is of this kind.
    load: (path as given, the checkpoint dict, the options given, None ones left out) -> LoadedEncoder. The
        loader checks the options itself (saying why one does not apply to this kind).
    encoder: its encoder class (whose `capabilities` say what it can do).
    weights: the store of its per-photo generator weights (of kind `Capabilities.weights_kind`), or None when it
        returns none.
    rereads: its loader reads the file its own way (the dict read to recognize it is dropped first; None is
        passed in its place).
    """

    name: str
    recognize: Callable[[dict[str, Any]], bool]
    load: Callable[[Path | str, dict[str, Any] | None, dict[str, Any]], LoadedEncoder]
    encoder: type
    weights: WeightsStore | None = None
    rereads: bool = False

    @property
    def capabilities(self) -> Capabilities:
        return capabilities(self.encoder)


KINDS: list[Kind] = [
    Kind("restyle", restyle.recognize, restyle.load, restyle.ReStyleEncoder),
    Kind("hyperstyle", hyperstyle.recognize, hyperstyle.load, hyperstyle.HyperStyleEncoder, hyperstyle.STORE),
    Kind("e4e", e4e.recognize, e4e.load, e4e.E4EEncoder, rereads=True),
]
FALLBACK = "e4e"  # claims any checkpoint the others do not; a file with a converted copy in the cache is one


def register_kind(row: Kind) -> Kind:
    """Add a kind (or replace the one of that name), tried before the e4e fallback. The table is per process:
    register it where it is used (an `EncoderSpec` built in another process sees that process's table)."""
    KINDS[:] = [k for k in KINDS if k.name != row.name]
    KINDS.insert(len(KINDS) - 1 if KINDS and KINDS[-1].name == FALLBACK else len(KINDS), row)
    return row


def kind(name: str) -> Kind:
    for row in KINDS:
        if row.name == name:
            return row
    raise KeyError(f"no encoder kind {name!r} (known: {', '.join(k.name for k in KINDS)})")


def weights_stores() -> list[WeightsStore]:
    """The stores of every kind that keeps per-photo generator weights, in table order."""
    return [row.weights for row in KINDS if row.weights is not None]


def weights_store(encoder: Any) -> WeightsStore | None:
    """The store of the per-photo generator weights `encoder` returns (by `Capabilities.weights_kind`); None for
    an encoder that renders through the shared generator."""
    wanted = capabilities(encoder).weights_kind
    return next((store for store in weights_stores() if store.kind == wanted), None) if wanted else None


def checkpoint_kind(path: Path) -> tuple[str, dict[str, Any] | None]:
    """(the kind's name, the checkpoint dict when it had to be read). A file with a converted e4e copy in the
    cache (made from the file as it is now) is e4e without reading it (keeping the e4e loader's fast path)."""
    from stylecli.encoders.loader import current_copy
    from stylecli.files.checkpoints import read_checkpoint

    path = Path(path)
    if path.is_file() and current_copy(path) is not None:
        return FALLBACK, None
    ckpt = read_checkpoint(path)
    for row in KINDS:
        if row.recognize(ckpt):
            return row.name, ckpt
    return FALLBACK, ckpt


def load_encoder(path: Path | str, **options: Any) -> LoadedEncoder:
    """The encoder and generator of a checkpoint file of any kind. options: what its kind takes (steps,
    w_encoder; see `Capabilities.options`); None means not given."""
    name, ckpt = checkpoint_kind(Path(path))
    row = kind(name)
    if row.rereads:
        ckpt = None  # (a checkpoint can be a gigabyte: not held while the loader reads it again)
    return row.load(path, ckpt, {k: v for k, v in options.items() if v is not None})


@dataclass
class EncoderSpec:
    """How to build an encoder, picklable, for another process: a checkpoint `path` or a registry `name`, and
    the loading options (steps, w_encoder)."""

    path: str | None = None
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.name is None):
            raise UsageError("an encoder spec names a checkpoint path or a registry name (one of the two)")

    def build(self) -> LoadedEncoder:
        """Load it (a registry model is downloaded and verified on first use; its domain is the entry's)."""
        if self.path is not None:
            return load_encoder(self.path, **self.options)
        path, domain = pretrained_checkpoint(self.name, self.options)
        loaded = load_encoder(path, **self.options)
        loaded.named_domain = domain
        return loaded


def pretrained_checkpoint(name: str, options: dict[str, Any] | None = None) -> tuple[Path, str | None]:
    """A registry encoder checkpoint's local file (downloaded and verified on first use) and the domain its entry
    names (None: it names none). `options` (steps, w_encoder; None: not given) that the entry's encoder kind does
    not take are refused first, before any download."""
    from stylecli.registry import weights

    try:
        entry = weights.get_entry(name)
    except weights.WeightsError as exc:
        raise UsageError(f"--model {name}: {exc}") from None
    if entry.kind != "checkpoint":
        raise UsageError(f"--model {name}: is a {entry.kind or 'data'} file, not an encoder checkpoint")
    check_model_options(name, entry.encoder, options or {})
    return weights.resolve(name), entry.domain


OPTION_FLAGS = {"steps": "--steps", "w_encoder": "--w-encoder"}  # the loading options, as the command line says


def check_model_options(name: str, encoder: str | None, options: dict[str, Any]) -> None:
    """Loading options given (not None) that registry model `name`, of encoder kind `encoder` (its entry's; None:
    unknown until it loads, whose loader then checks), does not take: a usage error naming the kinds that do."""
    row = next((k for k in KINDS if k.name == encoder), None)
    if row is None:
        return
    for option, value in options.items():
        if value is not None and option in OPTION_FLAGS and option not in row.capabilities.options:
            takers = [k.capabilities.label for k in KINDS if option in k.capabilities.options]
            flag = OPTION_FLAGS[option]
            raise UsageError(f"--model {name} {flag}: {flag} is for {' and '.join(takers)} models, and {name} "
                             f"({row.capabilities.label}) does not take it")
