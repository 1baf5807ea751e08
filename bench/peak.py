"""This machine's measured fp32 peak: the best GFLOP/s of a large numpy float32 matmul.

A square n x n x n matmul is 2 n^3 FLOPs; numpy hands it to its BLAS (OpenBLAS here), which
uses every core with its best vector kernels, so the best of several runs is a practical
ceiling for dense fp32 work on this CPU (the denominator of the training step's "% of peak").
Run alone (`python -m bench.peak`) or through `python -m bench --suite=peak`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def blas_info() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except (TypeError, AttributeError):  # older numpy: no mode="dicts"
        return "unknown"


def measure_peak(n: int = 4096, repeats: int = 10) -> dict:
    """Best and median GFLOP/s of `repeats` float32 n x n matmuls (after one warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return {"n": n, "repeats": repeats, "gflop_per_s_best": max(rates),
            "gflop_per_s_median": float(np.median(rates)), "gflop_per_s_all": rates,
            "blas": blas_info(), "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 4096
    print("RESULT " + json.dumps(measure_peak(n)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
