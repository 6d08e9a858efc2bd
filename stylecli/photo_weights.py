"""Per-photo generator weights on disk, in the file beside the latent they render (one store per kind):

- an encoder's own, through the store in its kind's table row (encoders.kinds.weights_store): HyperStyle's
  compact weight offsets (`offsets`), NAME.hyperstyle.npz, tied to the model that computed them and to the
  latent's values;
- `tuned`: pivotal tuning's generator weights, NAME.tuned.safetensors (tuning.store), tied to the base
  generator and to the pivot (the latent).

`weights_file` is the one decision of which of them a latent has: the names a job declares before any work, what
it writes, what the browser editor's downloads hold. Tuned weights win over offsets, as in rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stylecli.errors import InputError
from stylecli.naming import tuned_weights_path

TUNED = "tuned"
PATHS = {TUNED: tuned_weights_path}  # tuning's file beside a latent (an encoder's store names its own)

# The tuned-weights file's own records, not how the weights were tuned (tuning_record leaves them out).
_STORE_KEYS = ("format", "version", "base_fingerprint", "pivot_sha256")


def weights_file(latent: Path, encoder: Any, tuned: bool) -> tuple[str, Path] | None:
    """The per-photo weights a latent rendered by `encoder` has beside it, as (kind, path): `tuned` when its
    generator was tuned (--tune, or a saved latent rendered through its tuned weights), else the encoder's own
    store's (HyperStyle's `offsets`); None for the shared generator."""
    from stylecli.encoders.kinds import weights_store

    if tuned:
        return TUNED, tuned_weights_path(latent)
    store = weights_store(encoder)
    return None if store is None else (store.output, store.path_of(latent))


def weights_outputs(latent: Path, encoder: Any, tuned: bool) -> dict[str, Path]:
    """weights_file as the outputs a job declares ({kind: path}, or {})."""
    found = weights_file(latent, encoder, tuned)
    return {} if found is None else {found[0]: found[1]}


def write_photo_weights(editor: Any, latent: Path, code: Any, weights: Any, tuning: dict[str, str] | None = None,
                        base_fingerprint: str | None = None, overwrite: bool = False) -> Path | None:
    """What `edit LATENT` needs beside a latent to render it as it was rendered here, tied to `code` (the
    latent's values), in the file weights_file names: tuned generator weights (with `tuning`, how they were tuned,
    given exactly when they were, and the base generator's fingerprint) or the encoder's own (HyperStyle's
    offsets, with the model's fingerprint); None for the shared generator."""
    found = weights_file(latent, editor.encoder, tuning is not None)
    if found is None:
        return None
    kind, path = found
    if weights is None:  # a caller's bug: every encoder or tuning that names a weights file computes its weights
        raise ValueError(f"{latent}: no {kind} generator weights to write")
    if kind != TUNED:
        from stylecli.encoders.kinds import weights_store

        return weights_store(editor.encoder).save(weights, path, editor.encoder, code, overwrite)
    from stylecli.tuning.store import code_digest, save_tuned

    metadata = {**(tuning or {}), "pivot_sha256": code_digest(code)}
    return save_tuned(path, editor.generator, weights, metadata, base_fingerprint=base_fingerprint,
                      overwrite=overwrite)


def remove_stale_weights(latent: Path, keep: Path | None = None) -> list[Path]:
    """Remove the weights files beside a latent but `keep` (left by an earlier run, they would belong to the latent
    this run replaced); the removed paths."""
    from stylecli.encoders.kinds import weights_stores

    removed = []
    for path in [store.path_of(latent) for store in weights_stores()] + [tuned_weights_path(latent)]:
        if path != keep and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def read_offsets(encoder: Any, latent: Path, code: Any) -> Any:
    """The compact per-photo weights (HyperStyle's offsets, a HyperStyleState) a saved latent (`code`, read from
    `latent`) is rendered with: for an encoder with a weights store, those of the file `invert` wrote beside the
    latent; None for the other encoders (which refuse a latent with another encoder's file beside it rather than
    silently render it without those weights). `offsets_weights` turns them into GeneratorWeights."""
    from stylecli.encoders.kinds import weights_store, weights_stores

    ours = weights_store(encoder)
    for store in weights_stores():
        path = store.path_of(latent)
        if store is not ours and path.is_file():  # rendered without them it would silently lose what they reconstruct
            raise InputError(f"{latent}: a {store.label} latent ({path.name} beside it); edit it with the "
                             f"{store.label} model that wrote it ({store.hint})")
    if ours is None:
        return None
    path = ours.path_of(latent)
    if not path.is_file():
        raise InputError(f"{latent}: a {ours.label} latent is rendered with its {ours.output}, {path.name}, which "
                         "`invert` writes beside it; it is missing (invert the photo again, or edit the photo itself)")
    return ours.load(path, encoder, code)


def offsets_weights(encoder: Any, offsets: Any) -> Any:
    """The GeneratorWeights of what read_offsets returned (None when it returned None)."""
    if offsets is None:
        return None
    from stylecli.encoders.kinds import weights_store

    return weights_store(encoder).to_weights(encoder, offsets)


def has_tuned_weights(latent: Path) -> bool:
    """Whether tuned generator weights sit beside a latent."""
    return tuned_weights_path(latent).is_file()


def read_tuned_weights(latent: Path, generator: Any, base_fingerprint: str | None = None, code: Any = None) -> Any:
    """The tuned GeneratorWeights beside a latent, refused unless tuned from `generator` (its fingerprint) and,
    given `code`, for that latent."""
    from stylecli.tuning.store import load_tuned

    return load_tuned(tuned_weights_path(latent), generator, base_fingerprint, code)


def tuning_record(latent: Path) -> dict[str, str]:
    """How the weights beside a latent were tuned (the tuned file's metadata without the file's own records)."""
    from stylecli.tuning.store import read_metadata

    return {k: v for k, v in read_metadata(tuned_weights_path(latent)).items() if k not in _STORE_KEYS}
