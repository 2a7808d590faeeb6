"""A small progress bar for long-running commands, drawn on stderr."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper

WIDTH = 30


class ProgressBar:
    """Counts work done towards a total and redraws one line (on a terminal) as it advances.

    On a terminal the line is redrawn in place at most every 1 %; elsewhere (CI logs, pipes) a line
    is written every 10 %, so logs stay short.
    """

    def __init__(self, total: int, *, label: str, stream: OutputWrapper) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._interactive = stream.isatty()
        self._shown = -1

    def advance(self, count: int) -> None:
        """Record ``count`` more items done, and redraw if the shown percentage changed."""
        self.done = min(self.total, self.done + count)
        step = 1 if self._interactive else 10
        percent = 100 * self.done // self.total if self.total else 100
        if percent // step != self._shown // step or self.done == self.total:
            self._shown = percent
            self._draw(percent)

    def close(self) -> None:
        """End the bar's line."""
        if self._interactive and self._shown >= 0:
            self.stream.write("\n", ending="")
            self.stream.flush()

    def _draw(self, percent: int) -> None:
        filled = WIDTH * percent // 100
        bar = "#" * filled + "." * (WIDTH - filled)
        elapsed = time.monotonic() - self.started
        line = f"{self.label} [{bar}] {percent:3d}% {self.done}/{self.total} {elapsed:.1f}s"
        if self._interactive:
            self.stream.write("\r" + line, ending="")
        else:
            self.stream.write(line, ending="\n")
        self.stream.flush()
