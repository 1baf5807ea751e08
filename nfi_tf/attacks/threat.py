"""The threat model shared by every attack: a norm, a budget, a step, and the projection.

One object (in the spirit of MadryLab/robustness' `LinfStep`/`L2Step`) is used by training
(PGD), evaluation (PGD, CW, APGD, FAB, Square, route-aware attacks) and synthesis (L2 steps),
so the eps ball and the pixel range are defined in exactly one place. Pixels are in [0, 1];
eps is in those units (8/255 = 0.031).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from nfi_tf.vocab import Norm

NORMS = tuple(Norm)


@dataclass(frozen=True)
class ThreatModel:
    """`norm` in NORMS, `epsilon` the radius, `step_size` the attack's (first) step length."""

    norm: Norm = Norm.LINF
    epsilon: float = 0.3
    step_size: float | None = None

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}. Received: norm={self.norm!r}")
        object.__setattr__(self, "norm", Norm(self.norm))  # "linf" given as text: the member
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be > 0. Received: epsilon={self.epsilon}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size must be > 0. Received: step_size={self.step_size}")

    def project(self, x_adv: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        """The closest point to x_adv in the eps ball around x, then clipped to [0, 1]."""
        return tf.clip_by_value(x + project_delta(x_adv - x, self.norm, self.epsilon), 0.0, 1.0)


def _per_example_l2(t: tf.Tensor) -> tf.Tensor:
    """[B, 1, 1, ...] L2 norm of each example, broadcastable against t."""
    axes = list(range(1, len(t.shape)))
    return tf.sqrt(tf.reduce_sum(tf.square(t), axis=axes, keepdims=True))


def project_delta(delta: tf.Tensor, norm: str, epsilon) -> tf.Tensor:
    """delta projected onto the `norm` ball of radius epsilon (per example)."""
    if norm == Norm.LINF:
        return tf.clip_by_value(delta, -epsilon, epsilon)
    if norm == Norm.L2:
        n = _per_example_l2(delta)
        return delta * tf.minimum(1.0, epsilon / tf.maximum(n, 1e-12))
    raise ValueError(f"norm must be one of {NORMS}. Received: norm={norm!r}")


def normalized_step(grad: tf.Tensor, norm: str) -> tf.Tensor:
    """The steepest-ascent direction of unit `norm`: sign(g) for L-inf, g/|g|_2 for L2."""
    if norm == Norm.LINF:
        return tf.sign(grad)
    return grad / tf.maximum(_per_example_l2(grad), 1e-12)
