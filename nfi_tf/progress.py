"""Progress that reads well in a terminal and in a log file.

In a terminal: Keras' progress bar (it redraws one line). Anywhere else (a log file, a pipe,
CI): a bar would write one ever-growing line of carriage returns, so progress is one plain line
every `every` seconds and at the end: `evaluate: 120/440 attack (27%), 95 s`.
"""

from __future__ import annotations

import sys
import time


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """Keras Progbar's `add`/`update` interface, printing plain lines (no carriage returns)."""

    def __init__(self, target: int, label: str, unit_name: str = "step", every: float = 30.0,
                 stream=None):
        self.target, self.label, self.unit_name, self.every = int(target), label, unit_name, every
        self.stream = stream or sys.stdout
        self.started = self.last = time.monotonic()
        self.seen = 0

    def update(self, current: int, values=None, finalize: bool | None = None) -> None:
        del values  # the per-epoch line carries the metrics
        self.seen = int(current)
        now = time.monotonic()
        done = self.seen >= self.target if finalize is None else finalize
        if done or now - self.last >= self.every:
            self.last = now
            pct = 100 * self.seen / max(self.target, 1)
            print(f"{self.label}: {self.seen}/{self.target} {self.unit_name} ({pct:.0f}%), "
                  f"{now - self.started:.0f} s", file=self.stream, flush=True)

    def add(self, n: int, values=None) -> None:
        self.update(self.seen + n, values)


def progress_bar(target: int, verbose: int, label: str, unit_name: str = "step", every: float = 30.0):
    """Keras' bar in a terminal, plain lines elsewhere, nothing at verbose=0."""
    import keras

    if verbose and not is_terminal():
        return LineProgress(target, label, unit_name, every)
    return keras.utils.Progbar(target, verbose=verbose, unit_name=unit_name)
