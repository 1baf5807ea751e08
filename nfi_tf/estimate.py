"""How long a run takes: the rate a cost model assumes before it starts, the pace measured while
it runs, and durations as a person reads them.

Before a run, the time is its FLOPs (`nfi_tf.flops`) over a sustained rate (`Rate.assumed`):

- No GPU visible: `CPU_GFLOP_PER_S_PER_CORE` times the cores this process may use. 70 GFLOP/s
  per core is BENCHMARKS.md's "Training: batch 128" table (2026-11-29, 2 quiet cores, AMD EPYC
  with AVX-512): the adversarial training steps of SmallCNN and WRN-16-1 sustained 139-149
  GFLOP/s of analytic FLOPs on both cores; the slowest, 139.3 (WRN-16-1 nfi), is 70 per core.
  (One thread alone ran at 80; WRN-34-10's steps at 168-217, its "paper scale" table: the
  default errs long for the largest model.) Scaling with the number of cores is an assumption:
  only 2 cores were measured, and another CPU model (AVX2 only) runs slower per core.
- A GPU visible: no rate is assumed (none was measured here); the FLOPs are stated and the
  time comes from the measured steps.

While a run goes, `Pace` measures: the seconds per unit since the end of the first unit (whose
time holds tf.function tracing), times the units left.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

# BENCHMARKS.md, "Training: batch 128": 139.3 GFLOP/s on 2 cores, the slowest training step.
CPU_GFLOP_PER_S_PER_CORE = 70.0


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def gpu_count() -> int:
    """GPUs TensorFlow sees (initializes TensorFlow's devices)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@dataclasses.dataclass(frozen=True)
class Rate:
    """A sustained FLOP rate (None: none assumed) and where it comes from, as one phrase."""

    flop_per_s: float | None
    basis: str

    @classmethod
    def assumed(cls, gpus: int, cores: int) -> Rate:
        if gpus:
            return cls(None, f"{gpus} GPU(s) found: no rate assumed, the time is measured "
                             f"from the first steps")
        return cls(CPU_GFLOP_PER_S_PER_CORE * cores * 1e9,
                   f"no GPU found: {CPU_GFLOP_PER_S_PER_CORE:.0f} GFLOP/s per CPU core x {cores} "
                   f"core(s), BENCHMARKS.md's training steps")

    def seconds(self, flops: float) -> float | None:
        return None if self.flop_per_s is None else flops / self.flop_per_s

    def time_text(self, flops: float) -> str:
        """`about 116 days at 140 GFLOP/s (no GPU found: ...)`, or the basis alone (no rate)."""
        if self.flop_per_s is None:
            return self.basis
        return (f"about {duration(flops / self.flop_per_s)} at {self.flop_per_s / 1e9:.0f} "
                f"GFLOP/s ({self.basis})")


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.4 h`, `113 days`: two significant figures at most."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h"
    return f"{seconds / 86400:.0f} days"


def flop_text(flops: float) -> str:
    """`19.9 MFLOP`, `46.0 TFLOP`, `1.37 EFLOP`."""
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9),
                        ("MFLOP", 1e6)):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.0f} FLOP"


class Pace:
    """The measured pace of a count of units: `tick(done)` after each, `left(units)` estimates.

    The first tick's time (tracing and warm-up) is left out as soon as a later tick has done
    more units; until then the time since `start` is all there is."""

    def __init__(self, done: int = 0, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start = (clock(), done)
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None

    def tick(self, done: int) -> None:
        now = (self.clock(), done)
        if self.first is None:
            self.first = now
        self.last = now

    def seconds_per_unit(self) -> float | None:
        if self.last is None:
            return None
        for t0, d0 in (self.first, self.start):
            if self.last[1] > d0:
                return (self.last[0] - t0) / (self.last[1] - d0)
        return None

    def left(self, units: float) -> float | None:
        per_unit = self.seconds_per_unit()
        return None if per_unit is None else per_unit * max(units, 0)
