"""`train_and_evaluate(config, model_dir)`: the whole training run, resumable at any point.

A composition: the runtime settings, the data, the checkpointed state (`state.py`), the
compiled step (`step.py`) and the loop with its hooks (`controller.py`, `hooks.py`).

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

import os
import tempfile
import time

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not public

from nfi_tf import data, io_utils, serving_examples
from nfi_tf.config import Config, preset_note
from nfi_tf.distribute import build_strategy, distribute_dataset, is_chief
from nfi_tf.training import epoch_eval, hooks
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

    info = data.load_info(config.data, download)
    if verbose:  # a dataset without a preset, or without a test split, says what it got
        for note in (preset_note(config.data.dataset, info.image_shape),
                     data.split_note(config.data, download)):
            if note:
                print(note, flush=True)
    t = config.train
    stream = data.TrainStream(config.data, t.batch_size, t.seed, download)
    # "validation" (held-out train images) when --validation_examples is set, else "test".
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
    eval_step = epoch_eval.make_eval_step(state.classifier, config.eval_attack, t.seed)
    history = hooks.History.resume(os.path.join(model_dir, "history.json"),
                                   os.path.join(write_dir, "history.json"),
                                   start_step // steps_per_epoch)
    banner = (f"nfi_tf: {config.model.method} on {info.name} ({stream.num_examples} train images, "
              f"{steps_per_epoch} steps/epoch, {t.epochs} epochs), {config.model.backbone}, "
              f"{strategy.num_replicas_in_sync} replica(s)")
    run_hooks = hooks.in_run_order(
        nan_guard=hooks.NanGuard(state.latest_checkpoint),
        stop_after=hooks.StopAfter(stop_after_steps) if stop_after_steps is not None else None,
        means=hooks.EpochMeans(ranges=("cf_denominator",)),
        evaluation=hooks.EpochEvaluation(eval_name,
                                         lambda: epoch_eval.evaluate(eval_step, eval_ds)),
        board=hooks.TensorBoard(os.path.join(write_dir, "logs"), epoch_groups=(eval_name,)),
        history=history,
        checkpoint=hooks.CheckpointPolicy(state.save, t.checkpoint_every_steps),
        progress=hooks.Progress(banner, eval_name, verbose),
    )

    def epoch_batches(epoch: int, skip: int):
        ds = stream.epoch(epoch, skip)
        return distribute_dataset(strategy, ds) if strategy.num_replicas_in_sync > 1 else ds

    started = time.time()
    controller = Controller(step_function(state.trainer, strategy, t.jit_compile), epoch_batches,
                            steps_per_epoch, steps_per_epoch * t.epochs, run_hooks)
    loop = controller.run(start_step)
    summary = _summary(recorded, info.name, stream.num_examples, eval_name, history.entries, loop,
                       time.time() - started)
    if loop.finished:
        with io_utils.atomic_path(os.path.join(write_dir, "model.keras"), suffix=".keras") as tmp:
            state.classifier.save(tmp)
        serving_examples.save(write_dir, config.data, info, download=download)
        io_utils.atomic_write_json(os.path.join(write_dir, "summary.json"), summary)
    return summary


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
