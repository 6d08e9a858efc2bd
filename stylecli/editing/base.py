"""The one interface every edit kind implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from stylecli.errors import StyleCliError


class EditError(StyleCliError):
    exit_code = 2  # a bad --direction / --keep: a usage error

    def for_option(self, option: str) -> EditError:
        """The same error, naming the option that gave the direction (`--keep agee: unknown direction ...`)."""
        message = str(self)
        if message.startswith("--direction "):
            return EditError(f"{option} {message.removeprefix('--direction ')}")
        return EditError(message if message.startswith(option) else f"{option}: {message}")


@dataclass
class Edit:
    """An edit of W+ codes [B, n_styles, dim]: `apply(codes, strength)` returns new codes, never in place.

    Subclasses implement `delta` (the change at a given strength). `label` names the edit in file names.
    """

    label: str
    default_strength: float = 3.0
    description: str = ""
    layers: tuple[int, ...] | None = field(default=None)  # None: every layer
    domain: str | None = None  # the generator a named direction was found for; None: any (files, SeFa)

    def delta(self, codes: torch.Tensor, strength: float) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, codes: torch.Tensor, strength: float | None = None) -> torch.Tensor:
        strength = self.default_strength if strength is None else float(strength)
        return codes + self.delta(codes, strength)

    def layer_mask(self, codes: torch.Tensor) -> torch.Tensor:
        """[1, n_styles, 1] with 1 on the layers this edit touches."""
        mask = torch.zeros(1, codes.shape[1], 1, dtype=codes.dtype, device=codes.device)
        if self.layers is None:
            mask[:] = 1
        else:
            if max(self.layers) >= codes.shape[1]:
                raise EditError(f"{self.label}: layer {max(self.layers)} does not exist (the model has "
                                f"{codes.shape[1]} style layers, 0-{codes.shape[1] - 1})")
            mask[:, list(self.layers)] = 1
        return mask


def apply_edits(codes: torch.Tensor, edits: Sequence[tuple[Edit, float | None]]) -> torch.Tensor:
    """Apply several edits one after the other."""
    for edit, strength in edits:
        codes = edit.apply(codes, strength)
    return codes


def parse_layers(spec: str | None, n_styles: int | None = None) -> tuple[int, ...] | None:
    """'all' / None -> None; '3' -> (3,); '0-5' -> (0..5); '0-3,8,10-11' -> those. Ranges are inclusive."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    try:
        for part in spec.split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if lo > hi:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise EditError(f"--layers {spec!r}: expected indices and inclusive ranges such as 0-5 or 0-3,8") from None
    if min(out) < 0 or (n_styles is not None and max(out) >= n_styles):
        raise EditError(f"--layers {spec!r}: layers go from 0 to {(n_styles or 1) - 1}")
    return tuple(sorted(set(out)))
