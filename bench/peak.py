"""This machine's measured fp32 peak: the best GFLOP/s of a large numpy float32 matmul.

A square n x n x n matmul is 2 n^3 FLOPs; numpy hands it to its BLAS (OpenBLAS here), which
uses every core with its best vector kernels, so the best of several runs is a practical
ceiling for dense fp32 work on this CPU (the denominator of the training step's "% of peak").
Run as `python -m bench --suite=peak` (bench/registry.py); `python -m bench.peak N` is the
child process that measures one matrix size n.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def _peak_process(n: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    proc = subprocess.run([sys.executable, "-m", "bench.peak", str(n)], capture_output=True,
                          text=True, cwd=_REPO, check=True, env=env)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def run_peak(tiny: bool) -> dict:
    """The peak suite: the all-core matmul, and one core's times the core count, each in a fresh
    process (BLAS threads are fixed at start-up). On shared cores a one-thread run is less often
    interrupted than a two-thread BLAS that waits for its slowest thread; `gflop_per_s_best`
    (the denominator of "% of peak") is the larger of the two."""
    n = 2048 if tiny else 4096
    all_cores = _peak_process(n, None)
    one_core = _peak_process(n, 1)
    cores = os.cpu_count() or 1
    return {"all_cores": all_cores, "one_core": one_core,
            "one_core_times_cores_gflop_per_s": one_core["gflop_per_s_best"] * cores,
            "gflop_per_s_best": max(all_cores["gflop_per_s_best"],
                                    one_core["gflop_per_s_best"] * cores),
            "gflop_per_s_median": all_cores["gflop_per_s_median"]}


def run_suite(config, results: dict, log=print) -> dict:
    """The peak suite in `python -m bench` (bench/registry.py)."""
    log("peak: numpy float32 matmul")
    peak = run_peak(config.tiny)
    log(f"  best {peak['gflop_per_s_best']:.1f} GFLOP/s (median {peak['gflop_per_s_median']:.1f})")
    return peak


def main(argv: list[str]) -> None:
    """The child process of `_peak_process`: one matmul size, its RESULT line."""
    n = int(argv[1]) if len(argv) > 1 else 4096
    print("RESULT " + json.dumps(measure_peak(n)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
