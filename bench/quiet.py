"""Benchmark only on quiet cores: wait (or refuse) while other work holds the CPU.

Timings taken while other jobs share 2 cores measure the neighbours as much as the code. Before
each measurement the suite samples the whole machine's CPU use for a second (nothing of the
benchmark runs then, so any use is someone else's) and waits until it is below `max_busy`;
after `timeout_s` it refuses with a message naming the load. The 1-minute load average is
recorded next to every figure as well, so a reader can see what the cores were doing.
"""

from __future__ import annotations

import os
import time

import psutil

from nfi_tf.errors import NfiError

MAX_BUSY = 0.25  # share of all cores other work may use while we measure


def sample(seconds: float = 1.0) -> dict:
    """The machine's CPU use over `seconds` (0..1 of all cores) and the load averages."""
    busy = psutil.cpu_percent(interval=seconds) / 100.0
    return {"busy_share": busy, "load_average": list(os.getloadavg()), "cores": os.cpu_count()}


def wait_for_quiet(max_busy: float = MAX_BUSY, timeout_s: float = 600.0, poll_s: float = 5.0,
                   log=print) -> dict:
    """Block until other work uses less than `max_busy` of the cores; returns the last sample."""
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        s = sample()
        if s["busy_share"] < max_busy:
            s["waited"] = waited
            return s
        if time.monotonic() >= deadline:
            raise NfiError(
                f"the cores are busy ({100 * s['busy_share']:.0f}% used by other work, load average "
                f"{s['load_average'][0]:.2f} on {s['cores']} cores) after waiting {timeout_s:.0f} s: "
                f"benchmark figures would measure the other jobs. Stop them, or pass "
                f"--max_busy=1 to measure anyway (and say so next to the numbers)")
        if not waited:
            log(f"waiting for quiet cores ({100 * s['busy_share']:.0f}% busy, load "
                f"{s['load_average'][0]:.2f})...")
        waited = True
        time.sleep(poll_s)
