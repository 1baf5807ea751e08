"""`train_and_evaluate(config, model_dir)`: the whole training run, resumable at any point.

Model dir layout (everything written atomically):
    config.json        the final config (also the identity a resumed run is checked against)
    checkpoints/       tf.train.CheckpointManager: model, optimizer (its step counter included)
    history.json       per-epoch train metrics and test-subset (or validation-split) evaluation
    logs/              TensorBoard
    model.keras        the trained classifier
    summary.json       final metrics, time, steps

Resume: rerunning the same command finds the latest checkpoint and continues from its step.
The data stream and every random draw are functions of (seed, step), see `data.TrainStream`
and `trainer.step_seed`, so with `--deterministic` a resumed run ends bit-identical to an
uninterrupted one.

MultiWorkerMirroredStrategy: every worker runs the same command; only the chief (worker 0)
writes the model dir, the others resume from its checkpoints and write theirs to a private
temporary dir.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not public

from nfi_tf import data, epoch_eval, io_utils
from nfi_tf.config import Config
from nfi_tf.distribute import build_strategy, distribute_dataset, is_chief
from nfi_tf.errors import NfiError, TrainingDivergedError
from nfi_tf.models import build_classifier
from nfi_tf.trainer import AdversarialTrainer

# Fields that make two model dirs hold different models: resuming across them is an error.
_IDENTITY = {
    "data": ("dataset",),
    "model": ("method", "backbone", "depth", "width", "robust_dims"),
}


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


def make_optimizer(config: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with momentum and TRADES' piecewise-constant schedule (decays at the given epochs)."""
    t = config.train
    boundaries = [e * steps_per_epoch for e in t.lr_decay_epochs]
    values = [t.learning_rate * t.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    schedule = (keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
                if boundaries else t.learning_rate)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=t.momentum)
    if t.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def check_model_dir(config: Config, model_dir: str) -> None:
    """Refuse to resume a model dir that holds another method's, dataset's or shape's model."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return
    old = Config.load(path)
    for group, fields in _IDENTITY.items():
        for f in fields:
            a, b = getattr(getattr(old, group), f), getattr(getattr(config, group), f)
            if a != b:
                raise NfiError(f"model dir {model_dir} holds a model with {f}={a!r}, but this run "
                               f"asks for {f}={b!r}: use another --model_dir or the same settings")


class _Run:
    """The objects of one training run, built under the distribution strategy's scope."""

    def __init__(self, config: Config, model_dir: str, strategy, info: data.DatasetInfo,
                 steps_per_epoch: int, restore_dir: str | None = None):
        with strategy.scope():
            self.classifier = build_classifier(config.model, info.image_shape, info.num_classes)
            self.trainer = AdversarialTrainer(self.classifier, config)
            self.optimizer = make_optimizer(config, steps_per_epoch)
            self.trainer.compile(optimizer=self.optimizer, jit_compile=False)
            # Build slots now so that a restore fills them (Keras creates them lazily otherwise).
            self.optimizer.build(self.classifier.trainable_variables)
        # Dropout's seed-generator state is not tracked through the model by tf.train.Checkpoint;
        # without it a resumed run would draw other dropout masks than an uninterrupted one.
        rng = {f"rng_{i}": v for i, v in enumerate(self.classifier.non_trainable_variables)
               if "seed_generator" in v.path}
        # The running counterfactual denominator, when used, resumes with the model.
        cf_state = self.trainer.counterfactual_state()
        extra = {"counterfactual": cf_state} if cf_state else {}
        self.checkpoint = tf.train.Checkpoint(model=self.classifier, optimizer=self.optimizer,
                                              rng=rng, **extra)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=3)
        # A non-chief worker saves into its own dir but resumes, like the chief, from the shared one.
        self.restore_dir = os.path.join(restore_dir or model_dir, "checkpoints")

    def restore(self) -> int:
        latest = tf.train.latest_checkpoint(self.restore_dir)
        if latest is None:
            return 0
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:
            raise NfiError(f"checkpoint {latest} is corrupt or from another model "
                           f"({type(e).__name__}); delete it to fall back to an older one, or "
                           f"use a new --model_dir") from e
        return int(self.optimizer.iterations.numpy())

    def save(self, step: int) -> str:
        return self.manager.save(checkpoint_number=step)


def step_function(trainer: AdversarialTrainer, strategy, jit_compile: bool) -> Callable:
    """The compiled training step as training runs it (public: the benchmarks time exactly this)."""
    replica_step = tf.function(trainer.train_step, jit_compile=jit_compile)
    if strategy.num_replicas_in_sync == 1:
        return replica_step

    @tf.function
    def distributed_step(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    return distributed_step


def _load_history(model_dir: str) -> list[dict]:
    path = os.path.join(model_dir, "history.json")
    if not os.path.exists(path):
        return []
    import json

    with open(path) as f:
        return json.load(f)


def train_and_evaluate(config: Config, model_dir: str, *, download: bool = True,
                       verbose: int = 1, stop_after_steps: int | None = None) -> dict:
    """Train (or resume) the configured model in `model_dir` and return the summary dict.

    `stop_after_steps` ends the run early after that global step (for tests and benchmarks);
    the checkpoint at that step is written, the final model and summary are not.
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
    t = config.train
    stream = data.TrainStream(config.data, t.batch_size, t.seed, download)
    # "validation" (held-out train images) when --validation_examples is set, else "test".
    eval_name, eval_ds = data.epoch_eval_dataset(config.data, t.eval_batch_size, download)
    steps_per_epoch = stream.steps_per_epoch
    total_steps = steps_per_epoch * t.epochs

    run = _Run(config, write_dir, strategy, info, steps_per_epoch, restore_dir=model_dir)
    step = run.restore()
    config.save(os.path.join(write_dir, "config.json"))
    history = _load_history(model_dir)[: step // steps_per_epoch]
    writer = tf.summary.create_file_writer(os.path.join(write_dir, "logs"))
    train_step = step_function(run.trainer, strategy, t.jit_compile)
    eval_step = epoch_eval.make_eval_step(run.classifier, config.eval_attack, t.seed)
    if verbose:
        print(f"nfi_tf: {config.model.method} on {info.name} ({stream.num_examples} train images, "
              f"{steps_per_epoch} steps/epoch, {t.epochs} epochs), {config.model.backbone}, "
              f"{strategy.num_replicas_in_sync} replica(s)"
              + (f"; resuming at step {step}" if step else ""), flush=True)

    started = time.time()
    last_metrics: dict = {}
    while step < total_steps:
        epoch, skip = divmod(step, steps_per_epoch)
        bar = keras.utils.Progbar(steps_per_epoch, verbose=verbose, unit_name="step")
        ds = stream.epoch(epoch, skip)
        if strategy.num_replicas_in_sync > 1:
            ds = distribute_dataset(strategy, ds)
        sums: dict[str, float] = {}
        seen = 0
        cf_range = [math.inf, -math.inf]  # the counterfactual denominator's per-step range
        for batch in ds:
            metrics = {k: float(v) for k, v in train_step(batch).items()}
            step += 1
            if not math.isfinite(metrics["loss"]):
                raise TrainingDivergedError(
                    f"loss is {metrics['loss']} at step {step} (epoch {epoch + 1}); training "
                    f"stopped, the last good checkpoint {run.manager.latest_checkpoint} is kept")
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            seen += 1
            if "cf_denominator" in metrics:
                cf_range = [min(cf_range[0], metrics["cf_denominator"]),
                            max(cf_range[1], metrics["cf_denominator"])]
            bar.update(step - epoch * steps_per_epoch,
                       values=[(k, v) for k, v in metrics.items() if k in _SHOWN])
            with writer.as_default(step=step):
                for k, v in metrics.items():
                    tf.summary.scalar(f"train/{k}", v)
            if t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0:
                run.save(step)
            if stop_after_steps is not None and step >= stop_after_steps:
                run.save(step)
                return {"stopped_at_step": step}
        run.save(step)
        last_metrics = {k: v / max(seen, 1) for k, v in sums.items()}
        if "cf_denominator" in sums:
            last_metrics["cf_denominator_min"], last_metrics["cf_denominator_max"] = cf_range
        result = epoch_eval.evaluate(eval_step, eval_ds)
        with writer.as_default(step=step):
            for k, v in result.items():
                tf.summary.scalar(f"{eval_name}/{k}", v)
        writer.flush()
        history.append({"epoch": epoch + 1, "step": step, "train": last_metrics, eval_name: result})
        io_utils.atomic_write_json(os.path.join(write_dir, "history.json"), history)
        if verbose:
            print(_epoch_line(epoch + 1, result, eval_name), flush=True)

    with io_utils.atomic_path(os.path.join(write_dir, "model.keras"), suffix=".keras") as tmp:
        run.classifier.save(tmp)
    final = history[-1] if history else {}
    summary = {
        "method": config.model.method,
        "dataset": info.name,
        "backbone": config.model.backbone,
        "epochs": t.epochs,
        "steps": step,
        "train_examples": stream.num_examples,
        f"{eval_name}_examples": final.get(eval_name, {}).get("examples"),
        "train_seconds_this_run": round(time.time() - started, 1),
        "final_train": final.get("train", {}),
        f"final_{eval_name}": final.get(eval_name, {}),
        "note": "test pgd_* attack the trade-off head (TRADES' PGD); routed-model robustness "
                "needs the adaptive `python -m nfi_tf.evaluate`",
    }
    io_utils.atomic_write_json(os.path.join(write_dir, "summary.json"), summary)
    return summary


_SHOWN = {"loss", "acc_tradeoff", "adv_acc_tradeoff", "acc_routed", "route_benign",
          "route_adversarial", "route_tradeoff"}


def _epoch_line(epoch: int, r: dict, split: str = "test") -> str:
    parts = [f"epoch {epoch}: {split} ({r['examples']} images)"]
    for name in epoch_eval.SCORED_OUTPUTS:
        if f"clean_{name}" in r:
            parts.append(f"{name} clean {100 * r[f'clean_{name}']:.1f}% "
                         f"pgd {100 * r[f'pgd_{name}']:.1f}%")
    return " | ".join(parts)
