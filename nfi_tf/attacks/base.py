"""What every attack shares: the model as an attack sees it, the `Attack` interface, seeds.

An attack sees a model as a `Target`: `logits`, a differentiable images -> logits function it
takes gradients of, and `judge`, the output whose argmax decides whether an input is fooled.
The two differ for the routed model: its hard switch has no gradient, so a gradient attack
follows a relaxation (straight-through, soft, one head, all heads) while every iterate is
judged by the hard routed output the model actually serves. Keeping any iterate that fools the
judge is what makes an attack on a switching model honest: a point that fooled the deployed
model once is never traded for a later, higher-loss point that does not.

An attack is an object with a threat model and `run(x, y, seed) -> x_adv` (numpy in, numpy
out, x_adv in the eps ball and [0, 1]). Same seed, same x_adv (seeds.py: how seeds are mixed).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nfi_tf.attacks import seeds
from nfi_tf.attacks.threat import ThreatModel

LogitsFn = Callable[[tf.Tensor], tf.Tensor]


@dataclass(frozen=True, eq=False)
class Target:
    """The output under attack, as the functions an attack needs.

    `logits`: differentiable images -> logits (what gradients follow); `judge`: the served
    output whose argmax decides whether an input is fooled (default: `logits`). The others are
    for the attacks that need them: `name` (the attack key's text, part of the attack's seed, so
    a run is a function of (seed, key, batch)), `joint` (images -> (logits, judge logits) in one
    forward pass), `objective` ((images, labels, aux) -> (objective, judge logits): the
    route-aware attacks), `aux` ((x, y) numpy -> per-example target classes) and `query` (a
    numpy images -> logits judge that cannot be differentiated, e.g. ONNX Runtime on a file).
    """

    logits: LogitsFn
    judge: LogitsFn | None = None
    name: str = ""
    joint: Callable | None = None
    objective: Callable | None = None
    aux: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    query: Callable[[np.ndarray], np.ndarray] | None = None

    def judge_logits(self, x: tf.Tensor) -> tf.Tensor:
        return (self.judge or self.logits)(x)

    @property
    def judged(self) -> bool:
        """True when every iterate is judged by the served output (and any that fools it is
        kept): a separate judge, a joint forward or an objective (the routed model's targets)."""
        return self.judge is not None or self.joint is not None or self.objective is not None


def fooled(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """[B] bool: argmax(logits) != y (ties resolve as argmax does: the lowest index)."""
    return tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(y, tf.int32))


def keep_fooling(x_best: tf.Tensor, done: tf.Tensor, x_new: tf.Tensor, fooled_new: tf.Tensor):
    """Update (x_best, done): an example already fooled keeps its point; a newly fooled one
    takes x_new; the others take x_new too (so the last iterate is returned when none fools)."""
    take = tf.logical_or(tf.logical_not(done), tf.logical_and(fooled_new, tf.logical_not(done)))
    mask = tf.reshape(take, [-1] + [1] * (len(x_new.shape) - 1))
    return tf.where(mask, x_new, x_best), tf.logical_or(done, fooled_new)


# The one seed scheme lives in seeds.py; these names stay for the attacks that import them here.
seed_tensor = seeds.stateless_seed
numpy_rng = seeds.numpy_rng


class Attack(abc.ABC):
    """An attack: `threat` (norm, eps, step) and `run(x, y, seed) -> x_adv`."""

    name: str = "attack"

    def __init__(self, threat: ThreatModel):
        self.threat = threat

    @abc.abstractmethod
    def run(self, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        """Adversarial images for (x, y): float32, |x_adv - x| <= eps in the norm, in [0, 1]."""

    def finish(self, x: np.ndarray, x_adv) -> np.ndarray:
        """x_adv as float32 numpy, projected once more (guards float rounding at the boundary)."""
        x_t = tf.convert_to_tensor(x, tf.float32)
        return self.threat.project(tf.convert_to_tensor(x_adv, tf.float32), x_t).numpy()
