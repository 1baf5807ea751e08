"""The training loop and each of its hooks alone, driven by a fake step (no model): the
controller's event order and resume, the NaN guard's stop, the checkpoint policy's steps, the
epoch means, history, TensorBoard and progress output."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from nfi_tf.errors import TrainingDivergedError
from nfi_tf.training import hooks
from nfi_tf.training.controller import Controller, Hook

NAN = math.nan


class Recorder(Hook):
    """Writes down every event it sees, as (event, step[, detail])."""

    def __init__(self):
        self.events = []

    def on_run_begin(self, state):
        self.events.append(("run_begin", state.step))

    def on_epoch_begin(self, state):
        self.events.append(("epoch_begin", state.step, state.epoch))

    def on_step_end(self, state, metrics):
        self.events.append(("step", state.step, metrics["loss"]))

    def on_epoch_end(self, state, logs):
        self.events.append(("epoch_end", state.step, dict(logs)))

    def on_run_end(self, state):
        self.events.append(("run_end", state.step))

    def steps(self):
        return [e[1] for e in self.events if e[0] == "step"]


def fake_run(step_metrics, hook_list, steps_per_epoch=4, start_step=0):
    """A controller whose step returns the batch itself: batch i is step_metrics[i] (a loss or a
    dict of metrics). Returns (controller, state, the (epoch, skip) pairs asked for)."""
    batches = [m if isinstance(m, dict) else {"loss": m} for m in step_metrics]
    asked = []

    def epoch_batches(epoch, skip):
        asked.append((epoch, skip))
        return batches[epoch * steps_per_epoch + skip:(epoch + 1) * steps_per_epoch]

    controller = Controller(lambda batch: batch, epoch_batches, steps_per_epoch,
                            len(batches), hook_list)
    return controller, controller.run(start_step), asked


def test_controller_calls_every_event_in_order_and_finishes():
    rec = Recorder()
    _, state, asked = fake_run([1.0, 2.0, 3.0, 4.0], [rec], steps_per_epoch=2)
    assert rec.events == [
        ("run_begin", 0),
        ("epoch_begin", 0, 0), ("step", 1, 1.0), ("step", 2, 2.0), ("epoch_end", 2, {}),
        ("epoch_begin", 2, 1), ("step", 3, 3.0), ("step", 4, 4.0), ("epoch_end", 4, {}),
        ("run_end", 4),
    ]
    assert asked == [(0, 0), (1, 0)]
    assert state.finished and state.stop_reason is None and state.step == 4


def test_controller_resumes_mid_epoch_from_the_start_step():
    rec = Recorder()
    _, state, asked = fake_run([1.0] * 8, [rec], steps_per_epoch=4, start_step=6)
    assert asked == [(1, 2)]  # epoch 2 (0-based 1), its first two batches skipped
    assert rec.steps() == [7, 8] and state.finished
    assert [e[1] for e in rec.events if e[0] == "epoch_end"] == [8]


def test_nan_guard_stops_at_the_first_nan_step_and_says_why():
    saved, rec = [], Recorder()
    guard = hooks.NanGuard(last_checkpoint=lambda: "ckpt-4")
    policy = hooks.CheckpointPolicy(saved.append)
    losses = [1.0, 1.0, 1.0, 1.0, 0.5, NAN, 0.4, 0.3]
    with pytest.raises(TrainingDivergedError) as caught:
        fake_run(losses, [guard, policy, rec])
    assert str(caught.value) == ("loss is nan at step 6 (epoch 2); training stopped, the last "
                                 "good checkpoint ckpt-4 is kept")
    # Later hooks never see the diverged step: nothing saves or logs it.
    assert saved == [4] and rec.steps() == [1, 2, 3, 4, 5]


def test_nan_guard_records_the_reason_in_the_loop_state():
    controller = Controller(lambda b: {"loss": b}, lambda epoch, skip: [2.0, math.inf, 1.0][skip:],
                            3, 3, [hooks.NanGuard()])
    with pytest.raises(TrainingDivergedError):
        controller.run()
    assert controller.state.step == 2
    assert controller.state.stop_reason == "loss is inf at step 2 (epoch 1)"
    assert not controller.state.finished


def test_checkpoint_policy_saves_every_n_steps_and_each_epoch_end_once():
    saved = []
    fake_run([1.0] * 8, [hooks.CheckpointPolicy(saved.append, every_steps=3)])
    assert saved == [3, 4, 6, 8]  # 3, 6: every 3 steps; 4, 8: epoch ends; 8 not twice at the end
    saved.clear()
    fake_run([1.0] * 8, [hooks.CheckpointPolicy(saved.append, every_steps=4)])
    assert saved == [4, 8]


def test_checkpoint_policy_saves_where_an_early_stop_ends_and_not_what_was_restored():
    saved, rec = [], Recorder()
    _, state, _ = fake_run([1.0] * 8, [hooks.StopAfter(5), hooks.CheckpointPolicy(saved.append), rec])
    assert saved == [4, 5]
    assert (state.step, state.finished, state.stop_reason) == (5, False, "stop_after_steps=5")
    assert [e[1] for e in rec.events if e[0] == "epoch_end"] == [4]  # epoch 2 never ended
    saved.clear()
    _, state, _ = fake_run([1.0] * 8, [hooks.CheckpointPolicy(saved.append)], start_step=8)
    assert saved == [] and state.finished  # a finished run rerun: nothing new to save


def test_epoch_means_average_each_epoch_and_keep_ranges():
    rec = Recorder()
    metrics = [{"loss": 1.0, "cf_denominator": 0.5}, {"loss": 2.0, "cf_denominator": 0.2},
               {"loss": 4.0, "cf_denominator": 0.9}, {"loss": 6.0, "cf_denominator": 0.7}]
    fake_run(metrics, [hooks.EpochMeans(ranges=("cf_denominator", "absent")), rec], steps_per_epoch=2)
    logs = [e[2]["train"] for e in rec.events if e[0] == "epoch_end"]
    assert logs[0] == pytest.approx({"loss": 1.5, "cf_denominator": 0.35,
                                     "cf_denominator_min": 0.2, "cf_denominator_max": 0.5})
    assert logs[1] == pytest.approx({"loss": 5.0, "cf_denominator": 0.8,
                                     "cf_denominator_min": 0.7, "cf_denominator_max": 0.9})


def test_epoch_evaluation_runs_once_per_epoch_under_its_name():
    calls, rec = [], Recorder()

    def evaluate():
        calls.append(1)
        return {"clean_routed": 0.25 * len(calls), "examples": 8}

    fake_run([1.0] * 4, [hooks.EpochEvaluation("validation", evaluate), rec], steps_per_epoch=2)
    results = [e[2]["validation"]["clean_routed"] for e in rec.events if e[0] == "epoch_end"]
    assert results == [0.25, 0.5] and len(calls) == 2


def test_history_resumes_up_to_the_restored_epoch_and_rewrites_the_file(tmp_path):
    path = str(tmp_path / "history.json")
    old = [{"epoch": e, "step": 2 * e, "train": {"loss": float(e)}} for e in (1, 2, 3)]
    with open(path, "w") as f:
        json.dump(old, f)
    # The checkpoint restored is at step 4 (end of epoch 2): epoch 3's entry is redone.
    history = hooks.History.resume(path, path, epochs_done=2)
    assert [h["epoch"] for h in history.entries] == [1, 2]
    history.clock = iter([10.0, 12.5, 20.0, 27.25]).__next__  # begin/end of epochs 3 and 4
    fake_run([1.0, 3.0] * 4, [hooks.EpochMeans(), history], steps_per_epoch=2, start_step=4)
    written = json.load(open(path))
    assert [(h["epoch"], h["step"]) for h in written] == [(1, 2), (2, 4), (3, 6), (4, 8)]
    assert written[2]["train"] == {"loss": 2.0} and written == history.entries
    # Each new epoch's own wall time; the entries kept from before the resume keep theirs.
    assert [h.get("seconds") for h in written] == [None, None, 2.5, 7.25]


def _scalars(log_dir):
    values = {}
    for event_file in sorted((log_dir).iterdir()):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for v in event.summary.value:
                values[(v.tag, event.step)] = float(tf.make_ndarray(v.tensor))
    return values


def test_tensorboard_writes_step_metrics_and_the_epoch_groups(tmp_path):
    evaluation = hooks.EpochEvaluation("test", lambda: {"clean_routed": 0.75, "examples": 16})
    board = hooks.TensorBoard(str(tmp_path / "logs"), epoch_groups=("test",))
    fake_run([0.5, 0.25, 0.125, 0.0625], [evaluation, board], steps_per_epoch=2)
    values = _scalars(tmp_path / "logs")
    assert [values[("train/loss", s)] for s in (1, 2, 3, 4)] == [0.5, 0.25, 0.125, 0.0625]
    assert values[("test/clean_routed", 2)] == 0.75 and values[("test/examples", 4)] == 16
    assert not [tag for tag, _ in values if tag.startswith("train/") and tag != "train/loss"]


def test_progress_prints_the_banner_and_one_line_per_epoch(capsys):
    evaluation = hooks.EpochEvaluation("test", lambda: {
        "clean_routed": 0.5, "pgd_routed": 0.25, "clean_tradeoff": 0.875, "pgd_tradeoff": 0.5,
        "examples": 64})
    fake_run([1.0] * 4, [evaluation, hooks.Progress("nfi_tf: a run", "test", verbose=1)],
             steps_per_epoch=2, start_step=2)
    out = capsys.readouterr().out
    assert "nfi_tf: a run; resuming at step 2\n" in out
    assert ("epoch 2: test (64 images) | routed clean 50.0% pgd 25.0% | "
            "tradeoff clean 87.5% pgd 50.0%") in out
    assert "epoch 1:" not in out  # resumed after epoch 1
    fake_run([1.0] * 2, [evaluation, hooks.Progress("quiet", "test", verbose=0)], steps_per_epoch=2)
    assert capsys.readouterr().out == ""


def test_progress_says_each_epochs_time_and_the_measured_time_left(capsys):
    now = [0.0]

    class TwoSecondSteps(Hook):
        def on_step_end(self, state, metrics):
            now[0] += 2.0

    evaluation = hooks.EpochEvaluation("test", lambda: {"examples": 8})
    progress = hooks.Progress("nfi_tf: a run", "test", verbose=1, estimate="nfi_tf: estimate: soon",
                              clock=lambda: now[0])
    fake_run([1.0] * 6, [TwoSecondSteps(), evaluation, progress], steps_per_epoch=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["nfi_tf: a run", "nfi_tf: estimate: soon"]
    # 2 s a step from the end of the first one (its tracing left out): 4 steps, then 2, left.
    assert [ln for ln in lines if "/3: " in ln] == [
        "epoch 1/3: 4 s; about 8 s left (from the measured steps)",
        "epoch 2/3: 4 s; about 4 s left (from the measured steps)",
        "epoch 3/3: 4 s; training done"]
    # Off a terminal the epoch's progress line carries the run's time left too.
    assert any(ln.startswith("epoch 1: 2/2 step (100%), ") and ln.endswith("; the run: about 8 s left")
               for ln in lines)


def test_the_run_hooks_keep_history_and_checkpoints_consistent_on_a_nan(tmp_path):
    # The order train_and_evaluate uses: a NaN in epoch 2 leaves epoch 1's history and checkpoint.
    saved = []
    history = hooks.History(str(tmp_path / "history.json"))
    run_hooks = hooks.in_run_order(nan_guard=hooks.NanGuard(), means=hooks.EpochMeans(),
                                   checkpoint=hooks.CheckpointPolicy(saved.append, every_steps=1),
                                   history=history)
    with pytest.raises(TrainingDivergedError, match="at step 3 \\(epoch 2\\)"):
        fake_run([1.0, 2.0, np.float32("nan"), 1.0], run_hooks, steps_per_epoch=2)
    assert saved == [1, 2]
    written = json.load(open(tmp_path / "history.json"))
    assert written == [{"epoch": 1, "step": 2, "seconds": written[0]["seconds"], "train": {"loss": 1.5}}]
    assert written[0]["seconds"] >= 0


class Killed(Exception):
    """Stands for the process being killed."""


def test_a_run_killed_in_the_epoch_end_evaluation_resumes_and_redoes_that_epoch(tmp_path):
    # A run killed while evaluating epoch 2 must not leave a checkpoint after epoch 2 whose
    # history lacks epoch 2: the resumed run would never write that epoch's entry.
    path = str(tmp_path / "history.json")
    saved, calls = [], []

    def evaluate():
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return {"clean_routed": 0.5}

    def run_hooks(history):
        return hooks.in_run_order(
            nan_guard=hooks.NanGuard(), means=hooks.EpochMeans(),
            evaluation=hooks.EpochEvaluation("test", evaluate), history=history,
            checkpoint=hooks.CheckpointPolicy(saved.append, every_steps=1))

    with pytest.raises(Killed):
        fake_run([1.0] * 6, run_hooks(hooks.History(path)), steps_per_epoch=2)
    assert saved == [1, 2, 3]  # step 4 (epoch 2's end) is saved only after its history entry
    assert [h["epoch"] for h in json.load(open(path))] == [1]
    resumed = hooks.History.resume(path, path, epochs_done=saved[-1] // 2)
    fake_run([1.0] * 6, run_hooks(resumed), steps_per_epoch=2, start_step=saved[-1])
    assert [(h["epoch"], h["step"]) for h in json.load(open(path))] == [(1, 2), (2, 4), (3, 6)]
    assert saved[3:] == [4, 5, 6]
