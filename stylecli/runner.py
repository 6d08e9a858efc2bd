"""Running a job over many inputs: one record per input, one bad input never stops the others."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stylecli.errors import StyleCliError
from stylecli.images import DEFAULT_MAX_PIXELS, read_image, write_latent, write_png
from stylecli.inputs import output_stems
from stylecli.pipeline import Inverter


@dataclass
class Record:
    """What happened to one input; `--json` prints exactly this."""

    input: str
    ok: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def failed_records(inputs: list[Path], message: str) -> list[Record]:
    """Every input failed for the same reason (e.g. the model did not load)."""
    return [Record(str(p), error=message) for p in inputs]


@dataclass
class InvertOptions:
    out_dir: Path = Path(".")
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


def invert_outputs(out_dir: Path, stem: str) -> dict[str, Path]:
    return {"image": out_dir / f"{stem}_inversion.png", "latent": out_dir / f"{stem}.npy"}


def run_invert(
    inputs: list[Path], inverter: Inverter, options: InvertOptions, emit: Callable[[Record], None]
) -> Summary:
    summary = Summary()
    start = time.perf_counter()
    for path, stem in zip(inputs, output_stems(inputs)):
        record = Record(str(path))
        try:
            targets = invert_outputs(options.out_dir, stem)
            if not options.overwrite:
                taken = [str(p) for p in targets.values() if p.exists()]
                if taken:
                    raise StyleCliError(f"{taken[0]}: exists (pass --overwrite to replace it)")
            loaded = read_image(path, options.max_pixels)
            record.notes = loaded.notes
            result = inverter.invert([loaded.pixels])[0]
            with _all_or_nothing() as written:
                written.append(write_latent(result.code, targets["latent"], options.overwrite))
                written.append(write_png(result.image, targets["image"], options.overwrite))
            record.outputs = {k: str(v) for k, v in targets.items()}
            record.ok = True
            summary.done += 1
        except StyleCliError as exc:
            record.error = str(exc)
            summary.failed += 1
        except OSError as exc:  # disk full, permissions: this input fails, the batch goes on
            record.error = f"{path}: could not write the outputs to {options.out_dir} ({exc.strerror or exc})"
            summary.failed += 1
        emit(record)
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def _all_or_nothing():
    """Collect the paths written for one input; if a later write fails, remove the earlier ones."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
