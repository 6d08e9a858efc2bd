"""Progress on stderr: a rich bar on a terminal, plain periodic lines in logs and pipes, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any

from stylecli.errors import error_line, warning_line

PLAIN_INTERVAL_S = 10.0


class Reporter:
    """total: the records (or steps) expected. unit_name: what the rate counts ("faces" reads "2.0 faces/s",
    "steps" for training); None takes each Summary's own unit_name."""

    def __init__(self, total: int, quiet: bool = False, stream: Any = None, interval: float = PLAIN_INTERVAL_S,
                 unit_name: str | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = total
        self.interval = interval
        self.unit_name = unit_name
        self._last = time.monotonic()
        self._bar = None
        self._done, self._started = 0, time.perf_counter()
        if not quiet and self.stream.isatty() and total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._console = Console(file=self.stream)
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self._console,
                                 transient=True)
            self._task = self._bar.add_task("stylecli", total=total, rate="")
            self._bar.start()

    def say(self, line: str, error: bool = False) -> None:
        """A line on stderr; quiet silences progress and summaries, never errors."""
        if self.quiet and not error:
            return
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def record(self, record: Any) -> None:
        if record.ok and record.status == "done":
            self.say(f"{record.input} -> {', '.join(record.outputs.values())}")
            for note in record.notes:
                if note.startswith("warning: "):
                    self.say(warning_line(f"{record.input}: {note[len('warning: '):]}"))
        elif record.status == "skipped":
            self.say(f"{record.input}: skipped (outputs exist)")
        else:
            self.say(error_line(record.error), error=True)

    def _rate(self, summary: Any) -> str:
        return f"{summary.units_per_second:.2f} {self.unit_name or summary.unit_name}/s"

    def update(self, summary: Any) -> None:
        finished = summary.done + summary.skipped + summary.failed
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, rate=self._rate(summary))
        elif not self.quiet and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            left = self.total - finished
            eta = left * summary.seconds / finished if finished else 0
            print(f"stylecli: {finished}/{self.total} ({summary.failed} failed), {self._rate(summary)}, "
                  f"about {eta:.0f}s left", file=self.stream, flush=True)

    def advance(self, n: int = 1) -> None:
        """For drivers that count finished items (not records): n more done, each one unit."""
        from stylecli.batch.runner import Summary

        self._done += n
        self.update(Summary(total=self.total, done=self._done, units=self._done,
                            seconds=time.perf_counter() - self._started, unit_name=self.unit_name or "images"))

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def close(self, summary: Any) -> None:
        self.stop()
        if self.unit_name:
            from dataclasses import replace

            summary = replace(summary, unit_name=self.unit_name)
        self.say(summary.line())
