"""Flags of `python -m bench` (the benchmark suite; see BENCHMARKS.md)."""

import os
import tempfile

from absl import flags


def define_flags() -> None:
    flags.DEFINE_string("suite", "all", "peak, train, scaling, serve, flops, bf16, paper_scale, all, "
                        "or a comma-separated list.")
    flags.DEFINE_bool("tiny", False, "A seconds-scale setting (CI): checks the suite runs, not speed.")
    flags.DEFINE_string("out", os.path.join("bench", "results.json"), "The JSON results file.")
    flags.DEFINE_string("plot", None, "Scaling PNG (default: bench/scaling.png; "
                        "bench/scaling_tiny.png with --tiny).")
    flags.DEFINE_string("serve_model_dir", None, "Model dir to serve (default: train a small "
                        "SmallCNN into --work_dir).")
    flags.DEFINE_float("max_busy", 0.25, "Wait before each suite until other work uses less than this "
                       "share of the cores (1: measure regardless; --tiny never waits).")
    flags.DEFINE_float("quiet_timeout", 600.0, "Seconds to wait for quiet cores before refusing.")
    flags.DEFINE_string("work_dir", os.path.join(tempfile.gettempdir(), "nfi_tf_bench"),
                        "Scratch space (the serve suite's model and export).")
