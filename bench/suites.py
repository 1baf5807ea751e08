"""Run the chosen suites in order, each on quiet cores, and write one JSON file of results.

Each suite's measuring and aggregating lives in its own module (bench/peak.py, train_suite.py,
scaling.py, serve_suite.py, flops_suite.py, bf16.py, paper_scale.py); the markdown tables in
bench/tables.py. This module only sequences them and records what the machine was doing.
"""

from __future__ import annotations

import datetime
import os
import sys

from bench import tables
from bench.config import SUITES, BenchConfig


def suites_of(value: str) -> list[str]:
    from nfi_tf.errors import NfiError

    names = [s.strip() for s in value.split(",") if s.strip()]
    if "all" in names:
        return list(SUITES)
    unknown = sorted(set(names) - set(SUITES))
    if unknown or not names:
        raise NfiError(f"--suite must be one of {SUITES + ('all',)} or a comma-separated list. "
                       f"Received: suite={value!r}")
    return [s for s in SUITES if s in names]


def run_suites(config: BenchConfig, log=print) -> dict:
    """Run `config.suites` in order, logging progress and tables with `log`; write and return
    the results."""
    from bench import quiet
    from bench.machine import machine
    from nfi_tf import io_utils

    suites, tiny, work_dir = list(config.suites), config.tiny, config.work_dir

    def settle(name: str) -> None:
        # --tiny (CI) checks that the suite runs, not speed: record the load, never wait.
        s = quiet.sample() if tiny else quiet.wait_for_quiet(config.max_busy, config.quiet_timeout, log=log)
        results["meta"].setdefault("quiet_checks", {})[name] = s

    def show(lines: list[str]) -> None:
        for line in lines:
            log(line)

    os.makedirs(work_dir, exist_ok=True)
    results: dict = {
        "meta": {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "command": "python -m bench " + " ".join(sys.argv[1:]), "suites": suites,
                 "tiny": tiny, "machine": machine(), "load_average_start": os.getloadavg(),
                 "note": "load averages are recorded because the cores may be shared: figures "
                         "are comparable within one run, not across machines or runs"},
    }
    if "peak" in suites or "train" in suites:
        from bench.peak import run_peak

        settle("peak")
        log("peak: numpy float32 matmul")
        results["peak"] = run_peak(tiny)
        log(f"  best {results['peak']['gflop_per_s_best']:.1f} GFLOP/s "
            f"(median {results['peak']['gflop_per_s_median']:.1f})")
    if "train" in suites:
        from bench.train_suite import run_train

        settle("train")
        results["train"] = run_train(tiny, results["peak"], log)
        show(tables.train_table(results["train"]) + tables.paired_table(results["train"]))
    if "scaling" in suites:
        from bench.scaling import run_scaling

        settle("scaling")
        results["scaling"] = run_scaling(tiny, isolated=not tiny, plot_path=config.plot_path, log=log)
        show(tables.scaling_table(results["scaling"]))
    if "serve" in suites:
        from bench.serve_suite import run_serve

        settle("serve")
        results["serve"] = run_serve(work_dir, config.serve_model_dir, tiny, log)
        if "error" not in results["serve"]:
            show(tables.precisions_table(results["serve"]))
    if "flops" in suites:
        from bench.flops_suite import run_flops

        # Counting traces graphs and runs one step per backbone for oneDNN's log: no timing,
        # so no wait for quiet cores.
        log("flops: analytic vs TensorFlow's count; oneDNN's convolution algorithms")
        results["flops"] = run_flops(tiny, log)
        show(tables.flops_table(results["flops"]) + [""]
             + tables.convolution_algorithms_table(results["flops"]))
    if "bf16" in suites:
        from bench.bf16 import run_bf16

        settle("bf16")
        log("bf16: mixed_bfloat16 vs fp32, interleaved")
        results["bf16"] = run_bf16(tiny, log)
        show(tables.bf16_table(results["bf16"]))
    if "paper_scale" in suites:
        from bench.paper_scale import run_paper_scale

        settle("paper_scale")
        log("paper_scale: WRN peak RSS vs batch, the paper's recipe's time")
        results["paper_scale"] = run_paper_scale(tiny, results.get("peak"), log)
        show(tables.paper_scale_memory_table(results["paper_scale"]) + [""]
             + tables.paper_scale_time_table(results["paper_scale"]))
    results["meta"]["load_average_end"] = os.getloadavg()
    show(tables.targets_table(results))
    os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
    io_utils.atomic_write_json(config.out, results)
    log(f"written to {config.out}")
    return results
