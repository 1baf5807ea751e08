"""The hooks `train_and_evaluate` puts around the loop, one concern each (see controller.py).

Their order in the list is the order they run in (`in_run_order`): `NanGuard` first (a
diverged step is neither saved nor logged), then `StopAfter`, `EpochMeans` and
`EpochEvaluation` (which fill the epoch's logs), the writers of those logs (`TensorBoard`,
`History`), then `CheckpointPolicy`, then `Progress`. The epoch-end checkpoint comes after the
history is written: a run killed during the epoch-end evaluation then resumes from before the
epoch's end and redoes it, instead of resuming after an epoch its history never recorded.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable

from nfi_tf import io_utils, outputs
from nfi_tf.errors import TrainingDivergedError
from nfi_tf.estimate import Pace, duration
from nfi_tf.training.controller import Hook, LoopState


class NanGuard(Hook):
    """Stops training at the first non-finite loss, before anything saves or logs that step.

    The reason goes to `state.stop_reason`, then `TrainingDivergedError` ends the run (a
    diverged run must not go on to write a model); `last_checkpoint()` names what is kept.
    """

    def __init__(self, last_checkpoint: Callable[[], str | None] = lambda: None, key: str = "loss"):
        self.last_checkpoint = last_checkpoint
        self.key = key

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        value = metrics[self.key]
        if math.isfinite(value):
            return
        reason = f"{self.key} is {value} at step {state.step} (epoch {state.epoch + 1})"
        state.request_stop(reason)
        raise TrainingDivergedError(f"{reason}; training stopped, the last good checkpoint "
                                    f"{self.last_checkpoint()} is kept")


class StopAfter(Hook):
    """Ends the run after global step `last_step` (tests and benchmarks stop runs midway)."""

    def __init__(self, last_step: int):
        self.last_step = last_step

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        if state.step >= self.last_step:
            state.request_stop(f"stop_after_steps={self.last_step}")


class CheckpointPolicy(Hook):
    """Saves at every epoch end, every `every_steps` steps (0: epoch ends only) and where a run
    ends early, so a stopped run resumes from exactly its last step. `save(step)` writes.

    An epoch's last step is saved at `on_epoch_end` only (after the hooks before this one have
    logged the epoch), never at its `on_step_end`."""

    def __init__(self, save: Callable[[int], object], every_steps: int = 0):
        self.save = save
        self.every_steps = every_steps
        self.last_saved: int | None = None

    def _save(self, step: int) -> None:
        if step != self.last_saved:  # an epoch end on a multiple of every_steps saves once
            self.save(step)
            self.last_saved = step

    def on_run_begin(self, state: LoopState) -> None:
        self.last_saved = state.step  # what was restored is on disk already

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        epoch_end = state.step % state.steps_per_epoch == 0
        if self.every_steps and state.step % self.every_steps == 0 and not epoch_end:
            self._save(state.step)

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        self._save(state.step)

    def on_run_end(self, state: LoopState) -> None:
        self._save(state.step)


class EpochMeans(Hook):
    """`logs["train"]`: each step metric's mean over the epoch's steps, and for the metrics in
    `ranges` also `<name>_min` and `<name>_max` (the counterfactual denominator moves within an
    epoch; its mean alone would hide a collapse)."""

    def __init__(self, ranges: Iterable[str] = ()):
        self.ranges = tuple(ranges)
        self._sums: dict[str, float] = {}
        self._extremes: dict[str, tuple[float, float]] = {}
        self._steps = 0

    def on_epoch_begin(self, state: LoopState) -> None:
        self._sums, self._extremes, self._steps = {}, {}, 0

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        for k in self.ranges:
            if k in metrics:
                lo, hi = self._extremes.get(k, (math.inf, -math.inf))
                self._extremes[k] = (min(lo, metrics[k]), max(hi, metrics[k]))
        self._steps += 1

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        means = {k: v / max(self._steps, 1) for k, v in self._sums.items()}
        for k, (lo, hi) in self._extremes.items():
            means[f"{k}_min"], means[f"{k}_max"] = lo, hi
        logs["train"] = means


class EpochEvaluation(Hook):
    """`logs[name]`: the result of `evaluate()` at every epoch end (the per-epoch check)."""

    def __init__(self, name: str, evaluate: Callable[[], dict]):
        self.name = name
        self.evaluate = evaluate

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        logs[self.name] = self.evaluate()


class TensorBoard(Hook):
    """Every step's metrics as `train/<name>`, and at each epoch end the logs entries named in
    `epoch_groups` as `<group>/<name>`, in the event files of `log_dir`."""

    def __init__(self, log_dir: str, epoch_groups: Iterable[str] = ()):
        self.log_dir = log_dir
        self.epoch_groups = tuple(epoch_groups)
        self.writer = None

    def on_run_begin(self, state: LoopState) -> None:
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(self.log_dir)

    def _scalars(self, step: int, prefix: str, values: dict) -> None:
        import tensorflow as tf

        with self.writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.scalar(f"{prefix}/{k}", v)

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self._scalars(state.step, "train", metrics)

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        for group in self.epoch_groups:
            self._scalars(state.step, group, logs.get(group, {}))
        self.writer.flush()

    def on_run_end(self, state: LoopState) -> None:
        self.writer.flush()


class History(Hook):
    """One entry per finished epoch (`{"epoch", "step", "seconds", **logs}`), rewritten atomically
    to `path` after each epoch; `entries` starts with what a resumed run already had.

    `seconds` is the epoch's wall time from its first step to its evaluation's end (the hooks
    before this one), so a run's training time is the sum over its entries even when it was
    stopped and resumed (a process's own clock only sees the time since the resume).
    """

    def __init__(self, path: str | None, entries: list[dict] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.path = path
        self.entries = list(entries or [])
        self.clock = clock
        self._started: float | None = None

    @classmethod
    def resume(cls, read_path: str, write_path: str, epochs_done: int) -> History:
        """The history of `read_path` up to the restored checkpoint's epoch (entries after it
        belong to steps the resumed run redoes)."""
        entries = []
        if os.path.exists(read_path):
            with open(read_path) as f:
                entries = json.load(f)
        return cls(write_path, entries[:epochs_done])

    def on_epoch_begin(self, state: LoopState) -> None:
        self._started = self.clock()

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        seconds = round(self.clock() - self._started, 3) if self._started is not None else None
        self.entries.append({"epoch": state.epoch + 1, "step": state.step, "seconds": seconds, **logs})
        if self.path:
            io_utils.atomic_write_json(self.path, self.entries)


# The step metrics the progress bar shows (the rest are in TensorBoard and history.json).
SHOWN = ("loss", "acc_tradeoff", "adv_acc_tradeoff", "acc_routed", "route_benign",
         "route_adversarial", "route_tradeoff")


class Progress(Hook):
    """A start line (and the run's estimate, when given), a Keras progress bar per epoch and two
    lines per finished epoch: the `eval_name` check's clean and PGD accuracy of every output,
    then the epoch's wall time and the time left at the pace measured so far (`Pace`: the
    first step, which traces the step function, left out); silent at verbose=0.

    Off a terminal the bar is a plain line every 60 s that also says the time left in the epoch
    and in the run (`nfi_tf.progress.LineProgress`)."""

    def __init__(self, banner: str, eval_name: str, verbose: int = 1, estimate: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.banner = banner
        self.eval_name = eval_name
        self.verbose = verbose
        self.estimate = estimate
        self.clock = clock
        self.bar = None
        self.pace = Pace(0, clock)
        self._epoch_started: float | None = None

    def on_run_begin(self, state: LoopState) -> None:
        self.pace = Pace(state.step, self.clock)
        if self.verbose:
            resuming = f"; resuming at step {state.step}" if state.step else ""
            print(self.banner + resuming, flush=True)
            if self.estimate:
                print(self.estimate, flush=True)

    def on_epoch_begin(self, state: LoopState) -> None:
        from nfi_tf.progress import progress_bar

        self._epoch_started = self.clock()
        # In a log file: a line every 60 s of the epoch (and the epoch lines below), no bar.
        self.bar = progress_bar(state.steps_per_epoch, self.verbose, f"epoch {state.epoch + 1}",
                                unit_name="step", every=60.0, left=True,
                                note=lambda: self.run_left(state))

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.pace.tick(state.step)
        self.bar.update(state.step - state.epoch * state.steps_per_epoch,
                        values=[(k, v) for k, v in metrics.items() if k in SHOWN])

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        self.pace.tick(state.step)  # the epoch's check counts in the pace too
        if self.verbose:
            print(epoch_line(state.epoch + 1, logs[self.eval_name], self.eval_name), flush=True)
            print(self.timing_line(state), flush=True)

    def run_left(self, state: LoopState) -> str | None:
        """`the run: about 20 min left`, once a step after the first was measured."""
        left = state.total_steps - state.step
        seconds = self.pace.left(left) if left > 0 else None
        return None if seconds is None else f"the run: about {duration(seconds)} left"

    def timing_line(self, state: LoopState) -> str:
        """`epoch 1/5: 61 s; about 4 min left (from the measured steps)`."""
        epochs = -(-state.total_steps // state.steps_per_epoch)
        took = self.clock() - self._epoch_started if self._epoch_started is not None else 0.0
        line = f"epoch {state.epoch + 1}/{epochs}: {duration(took)}"
        if state.step >= state.total_steps:
            return line + "; training done"
        seconds = self.pace.left(state.total_steps - state.step)
        return line if seconds is None else (
            f"{line}; about {duration(seconds)} left (from the measured steps)")


def epoch_line(epoch: int, result: dict, split: str = "test") -> str:
    """`epoch 3: test (1000 images) | routed clean 98.1% pgd 90.2% | ...`"""
    parts = [f"epoch {epoch}: {split} ({result['examples']} images)"]
    for name in outputs.SCORED_NFI:
        if f"clean_{name}" in result:
            parts.append(f"{name} clean {100 * result[f'clean_{name}']:.1f}% "
                         f"pgd {100 * result[f'pgd_{name}']:.1f}%")
    return " | ".join(parts)


def in_run_order(*, checkpoint: CheckpointPolicy, history: History,
                 nan_guard: NanGuard | None = None, stop_after: StopAfter | None = None,
                 means: EpochMeans | None = None, evaluation: EpochEvaluation | None = None,
                 board: TensorBoard | None = None, progress: Progress | None = None) -> list[Hook]:
    """The hooks given, in the order `train_and_evaluate` runs them (see the module docstring)."""
    ordered = (nan_guard, stop_after, means, evaluation, board, history, checkpoint, progress)
    return [h for h in ordered if h is not None]
