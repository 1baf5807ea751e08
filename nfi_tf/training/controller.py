"""The training loop: epochs of steps; everything else is a hook.

In the spirit of Keras callbacks and Model Garden's `Controller`: the controller knows only
the compiled step, where an epoch's batches come from and how many steps the run has.
Progress, TensorBoard, checkpoints, the NaN guard, per-epoch evaluation and the history are
hooks (`nfi_tf.training.hooks`), each testable alone with a fake step.

Hooks run in list order at every event. A hook ends the run early with `state.request_stop`
(the loop breaks after that step, before the epoch's end) or by raising; an earlier hook
raising means later ones never see the step, which is why the NaN guard comes before the
checkpoint policy: a diverged step is never saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence


@dataclasses.dataclass
class LoopState:
    """Where the loop is; hooks read it and may ask it to stop."""

    steps_per_epoch: int
    total_steps: int
    step: int = 0  # global steps done: the optimizer's counter after the last step
    epoch: int = 0  # 0-based epoch of the step being run (or of the last one)
    stop_reason: str | None = None  # set when a hook ended the run before total_steps

    @property
    def finished(self) -> bool:
        return self.stop_reason is None and self.step >= self.total_steps

    def request_stop(self, reason: str) -> None:
        """End the run after the current step (the first reason given is the one kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason


class Hook:
    """Does nothing at every event; a hook overrides the events it needs.

    `logs` at `on_epoch_end` is one dict shared by the epoch's hooks in order: a hook adds its
    entry ("train", the evaluation split's name) and later hooks read it.
    """

    def on_run_begin(self, state: LoopState) -> None:
        pass

    def on_epoch_begin(self, state: LoopState) -> None:
        pass

    def on_step_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, state: LoopState, logs: dict) -> None:
        pass

    def on_run_end(self, state: LoopState) -> None:
        pass


class Controller:
    """Runs `step_fn` over `epoch_batches(epoch, skip)` until `total_steps`, calling the hooks.

    `epoch_batches(epoch, skip)` yields that epoch's batches after its first `skip` (a resumed
    run starts mid-epoch); `step_fn(batch)` returns a dict of scalar metrics.
    """

    def __init__(self, step_fn: Callable, epoch_batches: Callable[[int, int], Iterable],
                 steps_per_epoch: int, total_steps: int, hooks: Sequence[Hook] = ()):
        self.step_fn = step_fn
        self.epoch_batches = epoch_batches
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.hooks = list(hooks)
        self.state: LoopState | None = None  # kept after a hook raised, for whoever catches it

    def _call(self, event: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, event)(self.state, *args)

    def run(self, start_step: int = 0) -> LoopState:
        self.state = state = LoopState(self.steps_per_epoch, self.total_steps, step=start_step)
        self._call("on_run_begin")
        while state.step < state.total_steps and state.stop_reason is None:
            state.epoch, skip = divmod(state.step, state.steps_per_epoch)
            self._call("on_epoch_begin")
            before = state.step
            for batch in self.epoch_batches(state.epoch, skip):
                metrics = {k: float(v) for k, v in self.step_fn(batch).items()}
                state.step += 1
                self._call("on_step_end", metrics)
                if state.stop_reason is not None:
                    break
            if state.step == before:  # would loop forever on the same epoch
                raise RuntimeError(f"epoch {state.epoch} yielded no batch after skipping {skip}")
            if state.stop_reason is None:
                self._call("on_epoch_end", {})
        self._call("on_run_end")
        return state
