"""Progress of tuning on stderr: on a terminal a bar per face with the LPIPS and the time left; in logs and pipes a
plain line every few seconds and one when the face is done; nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol

from stylecli.errors import counted
from stylecli.tuning.pti import TuningResult

PLAIN_INTERVAL_S = 10.0


class FaceProgress(Protocol):
    """Follows the tuning of one face: called with (step, lpips, mse) at each evaluation, closed at the end
    (with the result; None after a W projection)."""

    def __call__(self, step: int, lpips: float, mse: float) -> None: ...

    def close(self, result: TuningResult | None) -> None: ...


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _summary(label: str, result: TuningResult) -> str:
    how = "reached the LPIPS threshold" if result.stopped_early else "used every step"
    return (f"stylecli: {label}: tuned in {counted(result.steps, 'step')} ({how}), LPIPS {result.pivot_lpips:.4f} -> "
            f"{result.lpips:.4f}, {_duration(result.seconds)}")


class PlainProgress:
    def __init__(self, label: str, total: int, stream: Any, interval: float):
        self.label, self.total, self.stream, self.interval = label, total, stream, interval
        self.start = self.last = time.monotonic()

    def __call__(self, step: int, lpips: float, mse: float) -> None:
        now = time.monotonic()
        if step == 0 or (0 < step < self.total and now - self.last >= self.interval):
            self.last = now
            left = (self.total - step) * (now - self.start) / step if step else None
            tail = f", about {_duration(left)} left" if left is not None else ""
            print(f"stylecli: tuning {self.label}: step {step}/{self.total}, LPIPS {lpips:.4f}{tail}",
                  file=self.stream, flush=True)

    def close(self, result: TuningResult | None) -> None:
        if result is not None:
            print(_summary(self.label, result), file=self.stream, flush=True)


class BarProgress:
    def __init__(self, bar: Any, label: str, stream: Any):
        self.bar, self.label, self.stream = bar, label, stream
        self.task = bar.tasks[0].id

    def __call__(self, step: int, lpips: float, mse: float) -> None:
        self.bar.update(self.task, completed=step, lpips=f"{lpips:.4f}")

    def close(self, result: TuningResult | None) -> None:
        self.bar.stop()
        if result is not None:
            print(_summary(self.label, result), file=self.stream, flush=True)


class TuningBars:
    """Makes the FaceProgress of each face (a ProgressFactory, see stylecli.tuning.stage)."""

    def __init__(self, quiet: bool = False, stream: Any = None, interval: float = PLAIN_INTERVAL_S):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = interval

    def __call__(self, label: str, total: int) -> FaceProgress | None:
        if self.quiet:
            return None
        if self.stream.isatty():
            from rich.console import Console
            from rich.errors import LiveError
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("LPIPS {task.fields[lpips]}"), TimeRemainingColumn(),
                           console=Console(file=self.stream), transient=True)
            bar.add_task(f"tuning {label}", total=total, lpips="-")
            try:
                bar.start()
                return BarProgress(bar, label, self.stream)
            except LiveError:  # another live display (the batch's bar) is up: plain lines go above it
                pass
        return PlainProgress(label, total, self.stream, self.interval)
