"""Every suite of `python -m bench --suite=NAME`, registered here and nowhere else.

A suite is a name, a one-line summary (what `--help` lists), the config dataclass whose fields
are its flags (bench/config.py), and the function that runs it. Two kinds:

- measuring suites (config: BenchConfig) run together, in the order registered here
  (`--suite=peak,train`, `--suite=all`), each on quiet cores, into one JSON file
  (bench/suites.py sequences them); each is `run(config, results so far, log) -> its section`
  and prints its `table`;
- tools (any other config) run alone, each with its own flags and its own output file:
  `run(config, log)`. The old commands (`python -m bench.attack_bench ...`) hand over to them.

Runners are named by module and imported when they run, so listing the suites (and --help)
loads no benchmark code. Adding a suite is its config, its runner and one entry below.
"""

from __future__ import annotations

import dataclasses
import importlib
import textwrap
from collections.abc import Callable

from bench import tables
from bench.config import (
    AttackBenchConfig,
    BenchConfig,
    MultiWorkerConfig,
    ServeModelConfig,
    StepConfig,
    TimeToRobustnessConfig,
    WholeTestSetConfig,
)
from nfi_tf.errors import NfiError

ALL = "all"


def _runner(module: str, function: str = "run_suite") -> Callable:
    def run(*args, **kwargs):
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    run.__qualname__ = f"{module}.{function}"
    return run


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    summary: str
    run: Callable
    config: type = BenchConfig
    needs: tuple[str, ...] = ()  # measuring suites run first (their results are read)
    quiet: bool = True  # waits for quiet cores first (a suite that counts, not times, does not)
    table: Callable[[dict], list[str]] | None = None  # printed after it ran

    @property
    def measuring(self) -> bool:
        return self.config is BenchConfig


_SUITES = (
    Suite("peak", "this machine's fp32 peak, a large numpy matmul (bench/peak.py)",
          _runner("bench.peak")),
    Suite("train", "the compiled TRADES and nfi steps (SmallCNN/MNIST, WRN-16-1/CIFAR-10), the naive "
          "eager baseline and the performance levers, against the peak (bench/train_suite.py)",
          _runner("bench.train_suite"), needs=("peak",),
          table=lambda r: tables.train_table(r) + tables.paired_table(r)),
    Suite("scaling", "ms/step vs batch 32..512 and PGD steps 1..40, peak RSS vs batch, a PNG plot "
          "(bench/scaling.py)", _runner("bench.scaling"), table=tables.scaling_table),
    Suite("serve", "ONNX Runtime vs TF SavedModel serving, fp32, fp16 and int8, on a SmallCNN trained "
          "here (or --serve_model_dir) (bench/serve_suite.py)", _runner("bench.serve_suite"),
          table=lambda r: [] if "error" in r else tables.precisions_table(r)),
    Suite("flops", "the analytic FLOP count against TensorFlow's own, and oneDNN's convolution "
          "algorithms (bench/flops_suite.py)", _runner("bench.flops_suite"), quiet=False,
          table=lambda r: tables.flops_table(r) + [""] + tables.convolution_algorithms_table(r)),
    Suite("bf16", "mixed_bfloat16 vs fp32 interleaved: training step and serving (bench/bf16.py)",
          _runner("bench.bf16"), table=tables.bf16_table),
    Suite("paper_scale", "WRN-34-10 peak RSS vs batch, the paper's CIFAR-10 recipe's time here and on "
          "named GPUs (bench/paper_scale.py)", _runner("bench.paper_scale"),
          table=lambda r: tables.paper_scale_memory_table(r) + [""] + tables.paper_scale_time_table(r)),
    Suite("attack", "the evaluation's attacks on a routed model: seconds per image, GFLOP/s against "
          "the peak, beside a --baseline commit (bench/attack_bench.py)",
          _runner("bench.attack_bench"), AttackBenchConfig),
    Suite("serve_model", "ONNX Runtime vs TF SavedModel serving of a model dir's export "
          "(bench/serve_bench.py; the serve suite runs it)", _runner("bench.serve_bench"),
          ServeModelConfig),
    Suite("multi_worker", "training steps/s, 1 vs N workers on loopback (bench/multi_worker.py)",
          _runner("bench.multi_worker"), MultiWorkerConfig),
    Suite("time_to_robustness", "the quickstart's routed worst case vs its training minutes, on "
          "validation images (bench/time_to_robustness.py)", _runner("bench.time_to_robustness"),
          TimeToRobustnessConfig),
    Suite("whole_test_set", "a whole test set's cost: the quickstart's evaluation and AutoAttack's "
          "standard version per image, a slice in one process and sharded (bench/whole_test_set.py)",
          _runner("bench.whole_test_set"), WholeTestSetConfig),
    Suite("train_step", "one training-step configuration (bench/train_bench.py; the train, scaling "
          "and paper_scale suites run it)", _runner("bench.train_bench"), StepConfig),
    Suite("bf16_step", "one bf16 vs fp32 configuration (bench/bf16.py; the bf16 suite runs it)",
          _runner("bench.bf16", "run_step"), StepConfig),
)
_BY_NAME = {s.name: s for s in _SUITES}


def suites() -> tuple[Suite, ...]:
    return _SUITES


def get(name: str) -> Suite:
    if name not in _BY_NAME:
        raise NfiError(f"unknown suite; known: {', '.join(_BY_NAME)}. Received: suite={name!r}")
    return _BY_NAME[name]


def measuring() -> tuple[str, ...]:
    """The measuring suites, in run order (what --suite=all runs)."""
    return tuple(s.name for s in _SUITES if s.measuring)


def tools() -> tuple[str, ...]:
    return tuple(s.name for s in _SUITES if not s.measuring)


def select(text: str) -> list[Suite]:
    """The suites `--suite` names: `all`, measuring suites (comma-separated, run in registry
    order), or one tool; a one-line NfiError otherwise."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if ALL in names:
        names = list(measuring())
    unknown = sorted(set(names) - set(_BY_NAME))
    if unknown or not names:
        raise NfiError(f"--suite must be one of {measuring() + (ALL,)} or a comma-separated list, "
                       f"or one of {tools()}. Received: suite={text!r}")
    chosen = [s for s in _SUITES if s.name in names]
    if len(chosen) > 1 and not all(s.measuring for s in chosen):
        raise NfiError(f"a tool suite ({', '.join(tools())}) runs alone. Received: suite={text!r}")
    return chosen


def config_of(text: str) -> type:
    """The config whose flags `--suite=text` takes: a tool's own, else BenchConfig (also for
    text that names no suite: reading the flags then says what is wrong)."""
    try:
        chosen = select(text)
    except NfiError:
        return BenchConfig
    return chosen[0].config


def usage() -> str:
    """What `python -m bench --help` prints above the flags: every suite with its summary."""
    width = max(len(s.name) for s in _SUITES)

    def listed(kind_measuring: bool) -> list[str]:
        return [textwrap.fill(s.summary, 100, initial_indent=f"  {s.name:{width}s}  ",
                              subsequent_indent=" " * (width + 4))
                for s in _SUITES if s.measuring == kind_measuring]

    return "\n".join([
        "The benchmarks: python -m bench --suite=NAME [flags]", "",
        "Measuring suites (--suite=all, or a comma-separated list: run in this order, each on",
        "quiet cores, into one JSON file, --out):", *listed(True), "",
        "Tools (one at a time, each with its own flags and output file; python -m bench",
        "--suite=NAME --help lists its flags):", *listed(False)]) + "\n"
