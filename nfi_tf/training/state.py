"""What a training run builds and checkpoints: model, optimizer, RNG state, running means.

`TrainingState` builds them under the distribution strategy's scope and restores or saves
them as one `tf.train.Checkpoint`; `check_model_dir` refuses to resume another model's dir.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from nfi_tf import data
from nfi_tf.config import Config
from nfi_tf.errors import NfiError
from nfi_tf.models import build_classifier
from nfi_tf.training.lr_schedule import make_schedule
from nfi_tf.training.step import AdversarialTrainer

# Fields that make two model dirs hold different models: resuming across them is an error.
_IDENTITY = {
    "data": ("dataset",),
    "model": ("method", "backbone", "depth", "width", "robust_dims"),
}


def make_optimizer(config: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with momentum and the config's schedule (TRADES' decay epochs, or one cycle)."""
    t = config.train
    optimizer = keras.optimizers.SGD(learning_rate=make_schedule(t, steps_per_epoch),
                                     momentum=t.momentum)
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


class TrainingState:
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
        """Restore the latest checkpoint, if any; returns its global step (0 without one)."""
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

    def latest_checkpoint(self) -> str | None:
        return self.manager.latest_checkpoint
