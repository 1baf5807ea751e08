"""The machine's load while a run trains, so a training time is read with the load it ran under."""

from __future__ import annotations

import os
import threading


class LoadSampler:
    """The machine's 1-minute load average sampled every 30 s while a run trains, so a training
    time is read with the load it ran under (other work on the cores slows it)."""

    def __init__(self, every: float = 30.0):
        self._every, self._samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(self._every):
            self._samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        """reproduce_train.json's `load` entry."""
        s = self._samples or [os.getloadavg()[0]]
        return {"samples": len(s), "mean_1min": round(sum(s) / len(s), 2),
                "max_1min": round(max(s), 2), "cpus": os.cpu_count()}
