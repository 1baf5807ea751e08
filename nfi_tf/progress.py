"""Progress that reads well in a terminal and in a log file.

In a terminal: Keras' progress bar (it redraws one line). Anywhere else (a log file, a pipe,
CI): a bar would write one ever-growing line of carriage returns, so progress is one plain line
every `every` seconds and at the end: `evaluate: 120/440 attack (27%), 95 s`. Asked for
(`left=True`), the line also says how long the rest takes at the pace measured so far
(`nfi_tf.estimate.Pace`), and `note()` may add a clause: training's lines read
`epoch 1: 120/391 step (31%), 95 s, about 3 min left; the run: about 20 min left`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from nfi_tf.estimate import Pace, duration


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """Keras Progbar's `add`/`update` interface, printing plain lines (no carriage returns)."""

    def __init__(self, target: int, label: str, unit_name: str = "step", every: float = 30.0,
                 stream=None, left: bool = False, note: Callable[[], str | None] | None = None):
        self.target, self.label, self.unit_name, self.every = int(target), label, unit_name, every
        self.stream = stream or sys.stdout
        self.started = self.last = time.monotonic()
        self.seen = 0
        self.pace = Pace(0) if left else None
        self.note = note

    def update(self, current: int, values=None, finalize: bool | None = None) -> None:
        del values  # the per-epoch line carries the metrics
        self.seen = int(current)
        if self.pace is not None:
            self.pace.tick(self.seen)
        now = time.monotonic()
        done = self.seen >= self.target if finalize is None else finalize
        if done or now - self.last >= self.every:
            self.last = now
            print(self.line(now, done), file=self.stream, flush=True)

    def line(self, now: float, done: bool) -> str:
        pct = 100 * self.seen / max(self.target, 1)
        text = (f"{self.label}: {self.seen}/{self.target} {self.unit_name} ({pct:.0f}%), "
                f"{now - self.started:.0f} s")
        seconds = None if self.pace is None or done else self.pace.left(self.target - self.seen)
        if seconds is not None:
            text += f", about {duration(seconds)} left"
        extra = self.note() if self.note is not None else None
        return f"{text}; {extra}" if extra else text

    def add(self, n: int, values=None) -> None:
        self.update(self.seen + n, values)


def progress_bar(target: int, verbose: int, label: str, unit_name: str = "step", every: float = 30.0,
                 left: bool = False, note: Callable[[], str | None] | None = None):
    """Keras' bar in a terminal (its own ETA), plain lines elsewhere (`left`, `note`: see
    LineProgress), nothing at verbose=0."""
    import keras

    if verbose and not is_terminal():
        return LineProgress(target, label, unit_name, every, left=left, note=note)
    return keras.utils.Progbar(target, verbose=verbose, unit_name=unit_name)
