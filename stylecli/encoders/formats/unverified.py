"""Checking a hand-downloaded file that the registry has no published sha256 for: it must at least load safely
as a file of the entry's kind and architecture (an e4e_horse checkpoint is an e4e, not a pSp, 256 px, 14-style
model)."""

from __future__ import annotations

from pathlib import Path

from stylecli.domains import DOMAIN_STYLES, domain_of
from stylecli.errors import StyleCliError


class UnverifiedFileError(StyleCliError):
    pass


def check_unverified(entry, path: Path) -> str:
    """Raise UnverifiedFileError unless `path` loads as `entry` describes; return what was checked."""
    from stylecli.files.checkpoints import CheckpointError, read_checkpoint

    try:
        if entry.kind == "checkpoint":
            return _check_checkpoint(entry, path)
        if entry.kind == "backbone" and "moco" in entry.name:
            import torch

            from stylecli.registry.networks import moco_model

            moco_model(torch.device("cpu"), path)
            return "a MoCo ResNet-50 checkpoint"
        read_checkpoint(path)
        return "a checkpoint that loads safely"
    except CheckpointError as exc:
        why = str(exc).removeprefix(f"{path}: ").split("; ")[0]  # the path once, and no advice for another command
        raise UnverifiedFileError(f"{path}: cannot be {entry.name}: {why}; nothing was installed") from None
    except UnverifiedFileError:
        raise
    except StyleCliError as exc:
        raise UnverifiedFileError(f"{exc}; nothing was installed") from None


ENCODER_NAMES = {"e4e": "an e4e (Encoder4Editing)", "psp": "a pSp (GradualStyleEncoder)"}


def expected_encoder(entry) -> str | None:
    """The encoder an entry's name says it is (`e4e_horse`: e4e, `psp_ffhq`: pSp), or None."""
    prefix = entry.name.split("_", 1)[0]
    return prefix if prefix in ENCODER_NAMES else None


def _check_checkpoint(entry, path: Path) -> str:
    from stylecli.encoders.loader import load_model
    loaded = load_model(path, use_cache=False)
    wanted, found = expected_encoder(entry), loaded.config.kind
    if wanted is not None and found != wanted:  # the same tensor layout: opts.encoder_type tells them apart
        said = loaded.opts.get("encoder_type")
        why = f"opts.encoder_type {said!r}" if said else "no opts.encoder_type, read as e4e"
        raise UnverifiedFileError(f"{path}: {ENCODER_NAMES[found]} checkpoint ({why}); {entry.name} is "
                                  f"{ENCODER_NAMES[wanted]} checkpoint; nothing was installed")
    styles = DOMAIN_STYLES.get(entry.domain or "")
    if styles is not None and loaded.model.n_styles != styles:
        raise UnverifiedFileError(
            f"{path}: a {loaded.config.size} px model with {loaded.model.n_styles} style layers; {entry.name} is a "
            f"{entry.domain} model with {styles}; nothing was installed")
    domain = domain_of(loaded.opts, loaded.model.n_styles)
    if entry.domain and domain and domain != entry.domain:
        raise UnverifiedFileError(f"{path}: trained on {domain} (opts.dataset_type), {entry.name} is a {entry.domain} "
                                  "model; nothing was installed")
    kind = "an e4e" if found == "e4e" else "a pSp"
    return f"{kind} checkpoint of {loaded.config.size} px with {loaded.model.n_styles} style layers"
