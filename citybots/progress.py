"""A progress line for long command-line work (imports, model runs), on standard error."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class ProgressLine:
    """``label  42%  1,234,567 rows  98,765 rows/s``: redrawn in place on a terminal,
    printed every few seconds otherwise (CI logs, pipes)."""

    def __init__(
        self,
        label: str,
        fraction: Callable[[], float],
        *,
        every: float = 2.0,
        unit: str = "rows",
    ) -> None:
        self.label = label
        self.unit = unit
        self.fraction = fraction
        self.every = every
        self.started = time.perf_counter()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, *, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        line = (
            f"{self.label}  {self.fraction() * 100:5.1f}%  {done:,} {self.unit}  "
            f"{done / elapsed:,.{0 if done / elapsed >= 100 else 1}f} {self.unit}/s"
        )
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def counted(label: str, *, unit: str, every: float = 2.0) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback drawing a progress line, for work counted in steps
    (model runs, trainings) rather than in rows of a file."""
    seen = {"done": 0, "total": 1}
    line = ProgressLine(
        label, lambda: seen["done"] / max(seen["total"], 1), every=every, unit=unit
    )

    def progress(done: int, total: int) -> None:
        seen.update(done=done, total=total)
        line(done, final=done == total)

    return progress
