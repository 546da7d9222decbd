"""Progress of the loops people wait for: a live bar on a terminal, plain lines in logs.

    progress = Progress("features", total=len(examples), unit="examples")
    for example in progress.counting(examples):
        ...
    progress.finish()

On a terminal (the stream is a TTY) one line is redrawn in place, at most five times a
second: `features [########............] 4000/9815 examples  1210/s  ETA 5 s`. Anywhere
else (a file, a pipe, CI logs) a plain line is written every `log_every` units instead,
and nothing is redrawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")
BAR_WIDTH = 24
REDRAW_SECONDS = 0.2


class Progress:
    """`done` of `total` units (None: unknown) since the object was made."""

    def __init__(self, label: str, total: int | None = None, unit: str = "",
                 *, log_every: int = 10_000, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.unit = unit
        self.log_every = log_every
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._logged = 0

    def update(self, done: int, note: str = "") -> None:
        """`done` units are done now; `note` is appended to the line."""
        self.done = done
        if self.live:
            now = time.monotonic()
            if now - self._drawn_at >= REDRAW_SECONDS:
                self._drawn_at = now
                self.stream.write("\r" + self.line(note) + "\x1b[K")
                self.stream.flush()
        elif done - self._logged >= self.log_every:
            self._logged = done - done % self.log_every
            self.stream.write(self.line(note) + "\n")
            self.stream.flush()

    def counting(self, items: Iterable[T]) -> Iterator[T]:
        """Yields `items`, counting each one done after the loop body has run."""
        for item in items:
            yield item
            self.update(self.done + 1)

    def finish(self, note: str = "") -> None:
        """Ends the live line (with the final count); logs nothing more in a log."""
        if self.live:
            self.stream.write("\r" + self.line(note) + "\x1b[K\n")
            self.stream.flush()

    def line(self, note: str = "") -> str:
        """`label [bar] done/total unit  rate/s  ETA` on a terminal, `label: done/total
        unit, rate/s, ETA` in a log (no ETA without a total)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        unit = f" {self.unit}" if self.unit else ""
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        parts = [f"{count}{unit}", f"{rate:.1f}/s"]
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            parts.append(f"ETA {format_seconds(eta)}")
        if note:
            parts.append(note)
        if not self.live:
            return f"{self.label}: " + ", ".join(parts)
        bar = ""
        if self.total:
            filled = int(BAR_WIDTH * min(self.done / self.total, 1.0))
            bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
        return f"{self.label} {bar}" + "  ".join(parts)


def format_seconds(seconds: float) -> str:
    """3 s, 2 min 5 s, 1 h 4 min; "?" when unknown."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
