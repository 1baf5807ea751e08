"""BenchConfig: what `python -m bench` runs, built once from flags (flags/bench.py) and passed
down to bench.suites.run_suites. Each field's help is its flag's (flags/dataclass_flags.py)."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field

from nfi_tf.errors import check

SUITES = ("peak", "train", "scaling", "serve", "flops", "bf16", "paper_scale")


@dataclass(frozen=True)
class BenchConfig:
    # The command line takes one comma-separated string, "all" for every suite (bench.suites
    # .suites_of turns it into names); the config holds the names, in SUITES order.
    suites: tuple[str, ...] = field(default=SUITES, metadata={
        "flag": "suite", "kind": "string", "flag_default": "all",
        "help": f"{', '.join(SUITES)}, all, or a comma-separated list."})
    tiny: bool = field(default=False, metadata={
        "help": "A seconds-scale setting (CI): checks the suite runs, not speed."})
    out: str = field(default=os.path.join("bench", "results.json"), metadata={
        "help": "The JSON results file."})
    plot: str | None = field(default=None, metadata={
        "help": "Scaling PNG", "none": "bench/scaling.png; bench/scaling_tiny.png with --tiny"})
    serve_model_dir: str | None = field(default=None, metadata={
        "help": "Model dir to serve", "none": "train a small SmallCNN into --work_dir"})
    max_busy: float = field(default=0.25, metadata={
        "help": "Wait before each suite until other work uses less than this share of the cores "
                "(1: measure regardless; --tiny never waits)."})
    quiet_timeout: float = field(default=600.0, metadata={
        "help": "Seconds to wait for quiet cores before refusing."})
    work_dir: str = field(default=os.path.join(tempfile.gettempdir(), "nfi_tf_bench"), metadata={
        "help": "Scratch space (the serve suite's model and export)."})

    @property
    def plot_path(self) -> str:
        return self.plot or os.path.join("bench", "scaling_tiny.png" if self.tiny else "scaling.png")


def validate(c: BenchConfig) -> BenchConfig:
    unknown = sorted(set(c.suites) - set(SUITES))
    check(bool(c.suites) and not unknown, f"suites must be among {SUITES}. Received: {c.suites}")
    check(math.isfinite(c.max_busy) and c.max_busy > 0,
          f"max_busy is a share of the cores in (0, 1]. Received: max_busy={c.max_busy}")
    check(c.quiet_timeout >= 0, f"quiet_timeout must be >= 0. Received: quiet_timeout={c.quiet_timeout}")
    return c
