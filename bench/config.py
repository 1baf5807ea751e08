"""What each suite of `python -m bench` takes, as frozen dataclasses: a field is a flag.

flags/bench.py makes every flag from these fields (flags/dataclass_flags.py: the field's type and
default are the flag's, its metadata the help), so a setting is one field and `--help` cannot
drift from the config. The suites themselves are registered in bench/registry.py.

    BenchConfig             the measuring suites (peak, train, scaling, serve, flops, bf16,
                            paper_scale), run together into one JSON file
    AttackBenchConfig       --suite=attack             (python -m bench.attack_bench)
    ServeModelConfig        --suite=serve_model        (python -m bench.serve_bench)
    MultiWorkerConfig       --suite=multi_worker       (python -m bench.multi_worker)
    TimeToRobustnessConfig  --suite=time_to_robustness (python -m bench.time_to_robustness)
    WholeTestSetConfig      --suite=whole_test_set
    StepConfig              --suite=train_step, bf16_step: one configuration, as JSON
                            (python -m bench.train_bench / bench.bf16 '<json>')

`validate(config)` checks any of them (one-line NfiErrors with the received value).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field

from nfi_tf.errors import NfiError, check

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# === The measuring suites ===


@dataclass(frozen=True)
class BenchConfig:
    # The command line takes one comma-separated string, "all" (None here) for every measuring
    # suite; bench.registry.select reads it and knows the suites, so this module names none.
    suites: tuple[str, ...] | None = field(default=None, metadata={
        "flag": "suite", "kind": "string", "flag_default": "all",
        "help": "The measuring suites to run together (comma-separated; all: every one), or one "
                "tool run alone; python -m bench --suite=NAME --help lists a suite's flags."})
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


def _check_max_busy(max_busy: float) -> None:
    check(math.isfinite(max_busy) and 0 < max_busy,
          f"max_busy is a share of the cores in (0, 1]. Received: max_busy={max_busy}")


def _validate_bench(c: BenchConfig) -> None:
    check(c.suites is None or bool(c.suites), f"name at least one suite (None: all). Received: {c.suites}")
    _check_max_busy(c.max_busy)
    check(c.quiet_timeout >= 0, f"quiet_timeout must be >= 0. Received: quiet_timeout={c.quiet_timeout}")


# === The tools: each runs alone, with its own output ===


@dataclass(frozen=True)
class AttackBenchConfig:
    model_dir: str = field(metadata={
        "help": "A routed (nfi) model dir, e.g. runs/mnist_quickstart from scripts/quickstart.sh."})
    examples: int = field(default=200, metadata={"help": "Test images each attack runs on."})
    batch_size: int | None = field(default=None, metadata={
        "help": "Images per attack batch", "none": "min(--examples, 200), the evaluation's own"})
    baseline: str | None = field(default=None, metadata={
        "help": "A git commit (HEAD~1, a tag) measured too, attack by attack alternately with the "
                "current code", "none": "the current code only"})
    max_busy: float = field(default=0.25, metadata={
        "help": "Wait before each measurement until other work uses less than this share of the "
                "cores (1: measure regardless)."})
    out: str = field(default=os.path.join("bench", "attack_results.json"), metadata={
        "help": "The JSON results file."})

    @property
    def batch(self) -> int:
        return self.batch_size or min(self.examples, 200)


def _validate_attack(c: AttackBenchConfig) -> None:
    for name in ("examples", "batch"):
        value = getattr(c, name)
        check(value >= 1, f"{name} must be >= 1. Received: {name}={value}")
    _check_max_busy(c.max_busy)


@dataclass(frozen=True)
class ServeModelConfig:
    model_dir: str = field(metadata={"help": "A model dir written by python -m nfi_tf.train."})
    export_dir: str | None = field(default=None, metadata={
        "help": "Its export, exported with --quantize --precision=fp16 first when incomplete",
        "none": "<model_dir>/export"})
    repeats: int = field(default=200, metadata={"help": "Timed batch-1 calls (after --warmup calls)."})
    warmup: int = field(default=20, metadata={"help": "Untimed calls before timing."})
    throughput_batch: int = field(default=256, metadata={
        "help": "Batch size of the throughput measurement."})
    throughput_repeats: int = field(default=10, metadata={
        "help": "Timed calls at the throughput batch size."})
    output: str | None = field(default=None, metadata={
        "help": "JSON file", "none": "<export_dir>/serve_bench.json"})


def _validate_serve(c: ServeModelConfig) -> None:
    for name in ("repeats", "throughput_batch", "throughput_repeats"):
        value = getattr(c, name)
        check(value >= 1, f"{name} must be >= 1. Received: {name}={value}")


@dataclass(frozen=True)
class MultiWorkerConfig:
    workers: tuple[int, ...] = field(default=(1, 2), metadata={
        "help": "Worker counts to measure (1: one process, default strategy; N: N processes, "
                "MultiWorkerMirroredStrategy on loopback)."})
    batch: int = field(default=128, metadata={"help": "Global batch size, split between the workers."})
    attack_steps: int = field(default=10, metadata={"help": "PGD steps of the TRADES step."})
    warmup: int = field(default=3, metadata={"help": "Untimed steps first (tracing, thread pools)."})
    steps: int = field(default=20, metadata={"help": "Timed steps."})
    intra_op_threads: int = field(default=0, metadata={
        "help": "TensorFlow intra-op threads per worker (0: TensorFlow's default, every core)."})
    out: str | None = field(default=None, metadata={
        "help": "Also write the results as JSON to this file", "none": "print only"})
    worker_spec: str | None = field(default=None, metadata={
        "help": "Internal: run one worker of the measurement", "none": "measure every --workers"})


def _validate_multi_worker(c: MultiWorkerConfig) -> None:
    for name, value, low in (("workers", min(c.workers, default=0), 1), ("batch", c.batch, 1),
                             ("attack_steps", c.attack_steps, 1), ("warmup", c.warmup, 0),
                             ("steps", c.steps, 1), ("intra_op_threads", c.intra_op_threads, 0)):
        check(value >= low, f"{name} must be >= {low}. Received: {name}={value}")
    for n in c.workers:
        check(c.batch % n == 0, f"batch must split evenly between {n} workers. Received: batch={c.batch}")


# The time_to_robustness suite's variants (what --variants picks from): name -> the training
# flags appended to the quickstart's (they win over its own; bench/time_to_robustness.py).
TIME_TO_ROBUSTNESS_VARIANTS = {
    # The quickstart itself: 3 epochs, PGD-5 (step 0.08), lr 0.05 decayed x0.1 after epoch 2.
    "pgd5_3ep": [],
    "pgd10_3ep": ["--attack_steps=10", "--step_size=0.04"],
    "pgd5_5ep": ["--epochs=5", "--lr_decay_epochs=4"],
    # One cycle (fast adversarial training's schedule): peak 0.1 at 40% of the steps.
    "cyclic_3ep": ["--lr_schedule=cyclic", "--learning_rate=0.1"],
    "cyclic_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.1"],
    "cyclic_7ep": ["--epochs=7", "--lr_schedule=cyclic", "--learning_rate=0.1"],
    # Fewer, larger steps: PGD-3 with step 0.13 (3 x 0.13 > 0.3 reaches the ball's far side).
    "cyclic_pgd3_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.1",
                        "--attack_steps=3", "--step_size=0.13"],
    # Larger batches: half the steps, each on twice the images.
    "cyclic_b256_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.2",
                        "--batch_size=256"],
}


@dataclass(frozen=True)
class TimeToRobustnessConfig:
    variants: tuple[str, ...] = field(default=tuple(TIME_TO_ROBUSTNESS_VARIANTS), metadata={
        "help": f"Variants to run, of {', '.join(TIME_TO_ROBUSTNESS_VARIANTS)}."})
    out_dir: str = field(default=os.path.join(_REPO, "runs", "time_to_robustness"), metadata={
        "help": "Where each variant's model dir goes."})
    again: bool = field(default=False, metadata={
        "help": "Measure variants already in the results file again."})


def _validate_time_to_robustness(c: TimeToRobustnessConfig) -> None:
    unknown = [v for v in c.variants if v not in TIME_TO_ROBUSTNESS_VARIANTS]
    check(not unknown, f"unknown variants; known: {', '.join(TIME_TO_ROBUSTNESS_VARIANTS)}. "
                       f"Received: variants={','.join(unknown)}")


@dataclass(frozen=True)
class WholeTestSetConfig:
    model_dir: str = field(metadata={"help": "A trained model dir (e.g. the quickstart's)"})
    images: int = field(default=1000, metadata={
        "help": "The slice of the test set timed in one process and sharded (first N images)"})
    workers: int = field(default=2, metadata={"help": "Processes of the sharded recipe"})
    batch_size: int = field(default=100, metadata={"help": "Images per attack batch of the slice"})
    out: str = field(default=os.path.join(_REPO, "bench", "whole_test_set.json"), metadata={
        "help": "Where the results go (JSON)"})


def _validate_whole_test_set(c: WholeTestSetConfig) -> None:
    check(os.path.isfile(os.path.join(c.model_dir, "model.keras")),
          f"model_dir must hold a trained model (model.keras). Received: model_dir={c.model_dir}")
    for name in ("images", "workers", "batch_size"):
        value = getattr(c, name)
        check(value >= 1, f"{name} must be >= 1. Received: {name}={value}")
    check(c.workers <= -(-c.images // c.batch_size),
          f"workers must be at most the slice's batches ({-(-c.images // c.batch_size)}). "
          f"Received: workers={c.workers}")


@dataclass(frozen=True)
class StepConfig:
    spec: str = field(default="{}", metadata={
        "help": "One configuration as a JSON object: bench/train_bench.py's keys (bf16_step also "
                "takes serve_batches and serve_repeats). Prints one line, RESULT <json>."})

    @property
    def parsed(self) -> dict:
        return json.loads(self.spec)


def _validate_step(c: StepConfig) -> None:
    try:
        spec = c.parsed
    except json.JSONDecodeError as e:
        raise NfiError(f"spec must be a JSON object ({e.msg}). Received: spec={c.spec!r}") from None
    check(isinstance(spec, dict), f"spec must be a JSON object. Received: spec={c.spec!r}")


_VALIDATORS = {BenchConfig: _validate_bench, AttackBenchConfig: _validate_attack,
               ServeModelConfig: _validate_serve, MultiWorkerConfig: _validate_multi_worker,
               TimeToRobustnessConfig: _validate_time_to_robustness, StepConfig: _validate_step,
               WholeTestSetConfig: _validate_whole_test_set}


def validate(config):
    """`config` when its values are valid; a one-line NfiError naming the first bad one."""
    next(check_ for cls, check_ in _VALIDATORS.items() if isinstance(config, cls))(config)
    return config
