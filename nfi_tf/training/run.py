"""`train_and_evaluate(config, model_dir)`: the whole training run, resumable at any point.

A composition, in named steps: the runtime settings, the data and the checkpointed state
(`state.py`) with the start notes and the run's estimate (`_set_up`, `estimate.py`), the
compiled step (`step.py`) and the loop with its hooks (`_controller`: `controller.py`,
`hooks.py`), the finished model's files (`_write_final`).

Model dir layout (everything written atomically):
    config.json        the final config (also the identity a resumed run is checked against)
    checkpoints/       tf.train.CheckpointManager: model, optimizer (its step counter included)
    history.json       per-epoch train metrics and test-subset (or validation-split) evaluation
    logs/              TensorBoard
    model.keras        the trained classifier
    serving_examples.npz  a few real test images for export parity without the dataset
    summary.json       final metrics, time, steps

Resume: rerunning the same command finds the latest checkpoint and continues from its step.
The data stream and every random draw are functions of (seed, step), see `data.TrainStream`
and `AdversarialTrainer.step_seed`, so with `--deterministic` a resumed run ends bit-identical
to an uninterrupted one.

MultiWorkerMirroredStrategy: every worker runs the same command; only the chief (worker 0)
writes the model dir, the others resume from its checkpoints and write theirs to a private
temporary dir.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not public

from nfi_tf import data, flops, io_utils, serving_examples
from nfi_tf.config import Config, preset_note
from nfi_tf.distribute import build_strategy, distribute_dataset, is_chief
from nfi_tf.estimate import Rate, cpu_cores, gpu_count
from nfi_tf.training import epoch_eval, estimate, hooks
from nfi_tf.training.controller import Controller, LoopState
from nfi_tf.training.state import TrainingState, check_model_dir
from nfi_tf.training.step import step_function


def configure_runtime(config: Config) -> None:
    """Seeds, determinism and the dtype policy; call before any model is built."""
    t = config.train
    keras.utils.set_random_seed(t.seed)
    # Op determinism is process-global: switch it off explicitly when not asked for, or an
    # earlier deterministic run in the same process (tests, notebooks) would leak into this one.
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    keras.mixed_precision.set_global_policy(
        "float32" if t.mixed_precision == "off" else t.mixed_precision)


def train_and_evaluate(config: Config, model_dir: str, *, download: bool = True,
                       verbose: int = 1, stop_after_steps: int | None = None) -> dict:
    """Train (or resume) the configured model in `model_dir` and return its summary.

    The summary has the same keys whether the run finished or not (`finished`, `stop_reason`
    tell which). `stop_after_steps` ends the run early after that global step (for tests and
    benchmarks): the checkpoint at that step is written, the final model and summary.json are not.
    """
    configure_runtime(config)
    strategy = build_strategy(config.train.strategy)
    check_model_dir(config, model_dir)
    os.makedirs(model_dir, exist_ok=True)
    # Every worker of MultiWorkerMirroredStrategy runs all of this (saving reads variables, which
    # can take part in collectives), but only the chief writes the shared model dir: the others
    # write to a private temporary dir, removed when it is collected (at return, or at exit).
    scratch = None if is_chief(strategy) else tempfile.TemporaryDirectory(prefix="nfi_tf_worker_")
    write_dir = model_dir if scratch is None else scratch.name
    run = _set_up(config, model_dir, write_dir, strategy, download, verbose)
    started = time.time()
    loop = _controller(run, stop_after_steps, verbose).run(run.start_step)
    summary = _summary(run.recorded, run.info.name, run.stream.num_examples, run.eval_name,
                       run.history.entries, loop, time.time() - started)
    if loop.finished:
        _write_final(run, summary, download)
    return summary


@dataclasses.dataclass
class _Run:
    """What a run builds before its loop starts."""

    config: Config
    write_dir: str
    strategy: tf.distribute.Strategy
    info: data.DatasetInfo
    stream: data.TrainStream
    eval_name: str  # "validation" (held-out train images) with --validation_examples, else "test"
    eval_ds: tf.data.Dataset
    state: TrainingState
    start_step: int
    recorded: Config  # what config.json says (see `_finished_run_config`)
    history: hooks.History
    estimate: str | None = None  # the start line of `nfi_tf.training.estimate`


def _set_up(config: Config, model_dir: str, write_dir: str, strategy, download: bool,
            verbose: int) -> _Run:
    """The data, the restored state, config.json and the history; the start notes printed."""
    t = config.train
    info = data.load_info(config.data, download)
    stream = data.TrainStream(config.data, t.batch_size, t.seed, download)
    eval_name, eval_ds = data.epoch_eval_dataset(config.data, t.eval_batch_size, download)
    steps_per_epoch = stream.steps_per_epoch
    state = TrainingState(config, write_dir, strategy, info, steps_per_epoch, restore_dir=model_dir)
    start_step = state.restore()
    # What config.json says the model was trained with: a finished run asked again with other
    # settings (a changed recipe, e.g. the quickstart's) trains nothing, so its own config is
    # kept; rewriting it would misstate the model.
    recorded = _finished_run_config(model_dir, config, start_step, steps_per_epoch * t.epochs)
    if recorded is not config and verbose:
        print(f"nothing to train: {model_dir} holds a finished run trained with other settings "
              f"({', '.join(_differences(recorded, config))}); its config.json is kept. Use "
              "another --model_dir to train with this call's settings.", flush=True)
    recorded.save(os.path.join(write_dir, "config.json"))
    history = hooks.History.resume(os.path.join(model_dir, "history.json"),
                                   os.path.join(write_dir, "history.json"),
                                   start_step // steps_per_epoch)
    run = _Run(config, write_dir, strategy, info, stream, eval_name, eval_ds, state, start_step,
               recorded, history)
    if verbose:
        run.estimate = _announce(run, download)
    return run


def _announce(run: _Run, download: bool) -> str | None:
    """Print the notes of a dataset without a preset or without a test split (the first with
    the run's estimate in it); return the estimate's start line (`Progress` prints it)."""
    config = run.config
    cost = None
    forward = _forward_flops(run.state.classifier)
    if forward is not None:
        cost = estimate.training_cost(config, forward, run.stream.num_examples,
                                      estimate.check_examples(config, run.info.test_size),
                                      done_steps=run.start_step)
    rate = Rate.assumed(gpu_count(), cpu_cores())
    slow = estimate.preset_estimate(cost, rate) if cost is not None else None
    for note in (preset_note(config.data.dataset, run.info.image_shape, slow),
                 data.split_note(config.data, download)):
        if note:
            print(note, flush=True)
    return estimate.start_line(config, cost, rate) if cost is not None else None


def _forward_flops(classifier) -> int | None:
    """F of the model, None where the counter cannot read it: the estimate is advice, never a
    reason for a run to fail (a model whose layers have no static output shape)."""
    try:
        return flops.forward_flops(classifier)
    except (AttributeError, ValueError, TypeError):
        return None


def _controller(run: _Run, stop_after_steps: int | None, verbose: int) -> Controller:
    """The loop over the run's epochs with its hooks, in their order (hooks.in_run_order)."""
    config, state, strategy, t = run.config, run.state, run.strategy, run.config.train
    steps_per_epoch = run.stream.steps_per_epoch
    eval_step = epoch_eval.make_eval_step(state.classifier, config.eval_attack, t.seed)
    run_hooks = hooks.in_run_order(
        nan_guard=hooks.NanGuard(state.latest_checkpoint),
        stop_after=hooks.StopAfter(stop_after_steps) if stop_after_steps is not None else None,
        means=hooks.EpochMeans(ranges=("cf_denominator",)),
        evaluation=hooks.EpochEvaluation(run.eval_name,
                                         lambda: epoch_eval.evaluate(eval_step, run.eval_ds)),
        board=hooks.TensorBoard(os.path.join(run.write_dir, "logs"), epoch_groups=(run.eval_name,)),
        history=run.history,
        checkpoint=hooks.CheckpointPolicy(state.save, t.checkpoint_every_steps),
        progress=hooks.Progress(banner(config, run.info.name, run.stream.num_examples,
                                       steps_per_epoch, strategy.num_replicas_in_sync),
                                run.eval_name, verbose, estimate=run.estimate),
    )

    def epoch_batches(epoch: int, skip: int):
        ds = run.stream.epoch(epoch, skip)
        return distribute_dataset(strategy, ds) if strategy.num_replicas_in_sync > 1 else ds

    return Controller(step_function(state.trainer, strategy, t.jit_compile), epoch_batches,
                      steps_per_epoch, steps_per_epoch * t.epochs, run_hooks)


def banner(config: Config, dataset: str, train_examples: int, steps_per_epoch: int,
           replicas: int | None = None) -> str:
    """`nfi_tf: nfi on mnist (60000 train images, 469 steps/epoch, 100 epochs), small_cnn, ...`"""
    text = (f"nfi_tf: {config.model.method} on {dataset} ({train_examples} train images, "
            f"{steps_per_epoch} steps/epoch, {config.train.epochs} epochs), {config.model.backbone}")
    return text if replicas is None else f"{text}, {replicas} replica(s)"


def _write_final(run: _Run, summary: dict, download: bool) -> None:
    """A finished run's trained model, its serving examples and summary.json."""
    with io_utils.atomic_path(os.path.join(run.write_dir, "model.keras"), suffix=".keras") as tmp:
        run.state.classifier.save(tmp)
    serving_examples.save(run.write_dir, run.config.data, run.info, download=download)
    io_utils.atomic_write_json(os.path.join(run.write_dir, "summary.json"), summary)


def _finished_run_config(model_dir: str, config: Config, start_step: int,
                         total_steps: int) -> Config:
    """The config a finished run in `model_dir` was trained with when it differs from `config`;
    else `config` itself (nothing stored, unfinished, or the same settings)."""
    path = os.path.join(model_dir, "config.json")
    if start_step < total_steps or not os.path.exists(path):
        return config
    stored = Config.load(path)
    return stored if stored.to_dict() != config.to_dict() else config


def _differences(a: Config, b: Config) -> list[str]:
    """`group.field=old->new` for every field where `b` differs from `a`."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{g}.{f}={da.get(g, {}).get(f)!r}->{db[g][f]!r}" for g in db for f in db[g]
            if da.get(g, {}).get(f) != db[g][f]]


def _summary(config: Config, dataset: str, train_examples: int, eval_name: str,
             history: list[dict], loop: LoopState, seconds: float) -> dict:
    """The run's summary; the last finished epoch's metrics are the final ones."""
    final = history[-1] if history else {}
    return {
        "method": config.model.method,
        "dataset": dataset,
        "backbone": config.model.backbone,
        "epochs": config.train.epochs,
        "steps": loop.step,
        "finished": loop.finished,
        "stop_reason": loop.stop_reason,
        "train_examples": train_examples,
        "eval_split": eval_name,  # names the two keys below: test, or validation
        f"{eval_name}_examples": final.get(eval_name, {}).get("examples"),
        "train_seconds_this_run": round(seconds, 1),
        "final_train": final.get("train", {}),
        f"final_{eval_name}": final.get(eval_name, {}),
        "note": "test pgd_* attack the trade-off head (TRADES' PGD); routed-model robustness "
                "needs the adaptive `python -m nfi_tf.evaluate`",
    }
