"""Learn a direction from examples: a linear SVM separating positive from negative codes; its unit normal.

As InterFaceGAN does (genforce/interfacegan utils/manipulator.py, `train_boundary`: a linear-kernel SVC, the
coefficient vector normalized to unit length), on one 512-vector per example: the mean of the code's rows, or
one chosen layer. The held-out accuracy is measured with stratified k-fold cross-validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylecli.errors import StyleCliError, missing_package

MIN_PER_SIDE = 5
FOLDS = 5
WARN_BELOW = 0.8


class LearnError(StyleCliError):
    pass


class OverlapError(LearnError):
    exit_code = 2  # the same example on both sides: no input can fix the command


def shared_example(positive: Sequence[Path], negative: Sequence[Path]) -> str | None:
    """A file given on both sides (the same path, or the same bytes under another name), as words; else None.
    Read before any model is loaded: only files of equal size are hashed."""
    import hashlib

    def digest(path: Path) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    pos = {Path(p).resolve(): Path(p) for p in positive}
    for n in negative:
        if Path(n).resolve() in pos:
            return str(n)
    sizes: dict[int, list[Path]] = {}
    for p in pos.values():
        sizes.setdefault(p.stat().st_size, []).append(p)
    hashes: dict[str, Path] = {}
    for n in negative:
        same_size = sizes.get(Path(n).stat().st_size, [])
        if not same_size:
            continue
        for p in same_size:
            hashes.setdefault(digest(p), p)
        match = hashes.get(digest(Path(n)))
        if match is not None:
            return f"{n} (the same bytes as {match})"
    return None


@dataclass
class LearnedDirection:
    direction: np.ndarray  # float32 [1, dim], unit norm, pointing from negative to positive
    positive: int
    negative: int
    accuracy: float  # mean held-out accuracy over the folds
    folds: int
    layer: int | None  # None: the mean of the code's rows
    model: str = ""

    def sidecar(self) -> dict[str, Any]:
        info = {k: v for k, v in asdict(self).items() if k != "direction"}
        info["layer"] = "mean" if self.layer is None else self.layer
        info["held_out_accuracy"] = round(info.pop("accuracy"), 4)
        info["shape"] = list(self.direction.shape)
        return info


def features(codes: np.ndarray, layer: int | None = None) -> np.ndarray:
    """One vector per example from codes [N, n_styles, dim] (or [N, dim]): a layer, or the mean of the rows."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim == 2:
        return codes
    if layer is None:
        return codes.mean(axis=1)
    if not 0 <= layer < codes.shape[1]:
        raise LearnError(f"--layer {layer}: the codes have layers 0-{codes.shape[1] - 1}")
    return codes[:, layer]


def check_counts(positive: int, negative: int, failed: Sequence[str] = ()) -> None:
    """Enough examples on each side; `failed`: why the others could not be used (the first is said)."""
    if min(positive, negative) < MIN_PER_SIDE:
        unused = f"; {len(failed)} could not be used, the first: {failed[0]}" if failed else ""
        raise LearnError(f"learning a direction needs at least {MIN_PER_SIDE} examples on each side; got "
                         f"{positive} positive and {negative} negative{unused}: add more examples")


def check_sklearn() -> None:
    """scikit-learn can be imported: said (exit 2) before any example is inverted, not after."""
    try:
        import sklearn.model_selection  # noqa: F401
        import sklearn.svm  # noqa: F401
    except ImportError:
        raise missing_package("learning directions needs scikit-learn", "learn") from None


def fit_direction(positive: np.ndarray, negative: np.ndarray, layer: int | None = None, folds: int = FOLDS,
                  seed: int = 0, model: str = "") -> LearnedDirection:
    """Fit a linear SVM on positive (label 1) vs negative (label 0) codes and return its unit normal."""
    try:
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.svm import SVC
    except ImportError:
        raise missing_package("learning directions needs scikit-learn", "learn") from None
    pos, neg = features(positive, layer), features(negative, layer)
    check_counts(len(pos), len(neg))
    if pos.shape[1] != neg.shape[1]:
        raise LearnError(f"positive codes have width {pos.shape[1]} and negative ones {neg.shape[1]}")
    both = {row.tobytes() for row in pos} & {row.tobytes() for row in neg}
    if both:
        raise OverlapError(f"{len(both)} code{'s' * (len(both) > 1)} on both sides (the same face among the positive "
                           "and the negative examples?); a direction is learned from examples that differ: remove "
                           "it from one side")
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos), int), np.zeros(len(neg), int)])
    k = min(folds, len(pos), len(neg))
    splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    accuracy = float(cross_val_score(SVC(kernel="linear"), x, y, cv=splits).mean())
    normal = SVC(kernel="linear").fit(x, y).coef_.reshape(1, -1)
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm == 0:
        raise LearnError("the examples could not be separated by any direction (all codes identical?)")
    return LearnedDirection((normal / norm).astype(np.float32), len(pos), len(neg), accuracy, k, layer, model)


def save_direction(learned: LearnedDirection, dest: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the direction (.npy float32 [1, dim], or .pt) and its JSON sidecar DEST.json, atomically."""
    from stylecli.files.atomic import atomic_path
    from stylecli.files.images import check_free

    dest = Path(dest)
    side = dest.with_name(dest.name + ".json")
    for path in (dest, side):
        check_free(path, overwrite)
    with atomic_path(dest, overwrite=overwrite) as tmp:
        if dest.suffix == ".pt":
            import torch

            torch.save(torch.from_numpy(learned.direction), tmp)
        else:
            with open(tmp, "wb") as f:
                np.save(f, learned.direction)
    with atomic_path(side, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(learned.sidecar(), indent=2) + "\n")
    return dest, side


@dataclass
class Examples:
    codes: list[np.ndarray] = field(default_factory=list)  # one [n_styles, dim] per usable input
    failed: list[str] = field(default_factory=list)  # one message per input that gave no code


def check_example_shapes(examples: Examples) -> None:
    shapes = {c.shape for c in examples.codes}
    if len(shapes) > 1:
        raise StyleCliError(f"the example latents have different shapes ({', '.join(map(str, sorted(shapes)))}); "
                            "use latents of one model")


def latent_examples(paths: Sequence[Path]) -> Examples:
    """Saved latents as they are (no model to check them against: every example is a latent)."""
    from stylecli.files.images import read_latent

    out = Examples()
    for path in paths:
        try:
            out.codes.append(read_latent(Path(path)))
        except StyleCliError as exc:
            out.failed.append(str(exc))
    check_example_shapes(out)
    return out


def learn_from_inputs(positive: Sequence[Path], negative: Sequence[Path], load_editor: Callable[[], Any],
                      layer: int | None = None, align: bool = True,
                      progress: Callable[[str, int, int], None] | None = None,
                      model: str = "") -> tuple[LearnedDirection, list[str]]:
    """Codes of both example sets, then the SVM. A FaceEditor is loaded (`load_editor`) only when there are photos
    to invert; it reads every example through the pipeline's sources (FaceEditor.example_codes).

    Returns the direction and one message per input that could not be used. `progress(side, done, total)`
    follows the inversion of photos.
    """
    from stylecli.naming import is_latent

    check_counts(len(positive), len(negative))
    editor = None if all(map(is_latent, [*positive, *negative])) else load_editor()
    sides = {}
    for side, paths in (("positive", positive), ("negative", negative)):
        report = (lambda done, total, side=side: progress(side, done, total)) if progress else None
        sides[side] = latent_examples(paths) if editor is None else editor.example_codes(paths, align, report)
    failed = sides["positive"].failed + sides["negative"].failed
    pos, neg = sides["positive"].codes, sides["negative"].codes
    check_counts(len(pos), len(neg), failed)
    if pos[0].shape != neg[0].shape:
        raise LearnError(f"positive codes are {list(pos[0].shape)} and negative ones {list(neg[0].shape)}: use "
                         "examples of one model")
    label = model if editor is not None else f"latents {list(pos[0].shape)}"
    return fit_direction(np.stack(pos), np.stack(neg), layer, model=label), failed
