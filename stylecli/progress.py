"""Progress on stderr: a rich bar on a terminal, plain periodic lines in logs and pipes, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_INTERVAL_S = 10.0


class Reporter:
    def __init__(self, total: int, quiet: bool = False, stream: Any = None, interval: float = PLAIN_INTERVAL_S):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = total
        self.interval = interval
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
                    self.say(f"stylecli: warning: {record.input}: {note[len('warning: '):]}")
        elif record.status == "skipped":
            self.say(f"{record.input}: skipped (outputs exist)")
        else:
            self.say(f"stylecli: error: {record.error}", error=True)

    def update(self, summary: Any) -> None:
        finished = summary.done + summary.skipped + summary.failed
        if self._bar is not None:
            rate = f"{summary.images_per_second:.2f} {summary.unit_name}/s"
            self._bar.update(self._task, completed=finished, rate=rate)
        elif not self.quiet and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            left = self.total - finished
            eta = left * summary.seconds / finished if finished else 0
            print(f"stylecli: {finished}/{self.total} ({summary.failed} failed), "
                  f"{summary.images_per_second:.2f} {summary.unit_name}/s, about {eta:.0f}s left", file=self.stream,
                  flush=True)

    def advance(self, n: int = 1) -> None:
        """For drivers that count finished items (not records): n more done."""
        from stylecli.runner import Summary

        self._done += n
        self.update(Summary(total=self.total, done=self._done, faces=self._done,
                            seconds=time.perf_counter() - self._started, unit_name="images"))

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def close(self, summary: Any) -> None:
        self.stop()
        self.say(summary.line())
