"""Progressive training: W only at first, then one more per-layer offset every `every` steps."""

from __future__ import annotations

from stylecli.models.e4e import INFERENCE_STAGE


def progressive_steps(start: int | None, every: int, n_styles: int) -> list[int] | None:
    """Step at which stage i begins: [0, start, start + every, ...] (one entry per stage, n_styles in all);
    None when progressive training is off (every offset trains from the start)."""
    if start is None:
        return None
    return [0] + [start + i * every for i in range(n_styles - 1)]


def stage_at(step: int, steps: list[int] | None) -> int:
    """The number of active offsets at a training step."""
    if steps is None:
        return INFERENCE_STAGE
    return max(i for i, s in enumerate(steps) if s <= step)
