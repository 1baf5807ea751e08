"""PGD on any differentiable objective, every iterate judged by the served output.

The route-aware attacks on the routed model (docs/method.md §4) ascend objectives that are not a
loss of one logits vector (all heads' margins at once; "make the three argmaxes agree on a wrong
class"; a switch relaxed at some temperature) while the question is always whether the *hard*
routed output is fooled. `JudgedPGD` takes the objective and the judge separately: it ascends
`objective(x_adv, y, aux)` and keeps, per example, any iterate that fools `judge`, else the
highest-objective iterate.

Steps: sign of the gradient (L-inf) or its normalized direction (L2), of length eps/4 (or the
threat model's step_size). Schedule "halving" halves it at 50% and again at 75% of the steps, so
the late iterates refine instead of bouncing across the ball; "constant" keeps it (PGD as
TRADES evaluates, for the PGD and CW columns). Random start uniform in the ball.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from nfi_tf.attacks.base import Attack, fooled, seed_tensor
from nfi_tf.attacks.threat import ThreatModel, normalized_step

Objective = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


SCHEDULES = ("halving", "constant")


def step_sizes(epsilon: float, steps: int, first: float | None = None,
               schedule: str = "halving") -> np.ndarray:
    """[steps] step lengths: `first` (default eps/4), for "halving" halved at 50% and again at
    75% of the steps."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    first = float(first if first is not None else epsilon / 4)
    k = np.arange(steps)
    if schedule == "constant":
        return np.full(steps, first, np.float32)
    return (first * np.where(k < steps // 2, 1.0, np.where(k < (3 * steps) // 4, 0.5, 0.25))
            ).astype(np.float32)


class JudgedPGD(Attack):
    """Ascend `objective(x, y, aux) -> [B]`; success is `judge(x)`'s argmax != y.

    Args:
        objective: differentiable per-example objective to maximize; it may return
            `(objective, judge_logits)` when its forward pass already computed the judged output.
        judge: images -> logits of the served output (e.g. the hard routed logits).
        threat: the threat model (its step_size, if set, is the first step length).
        steps, restarts: iterations per run; restarts run only on examples not yet fooled.
        name: the attack's name in reports (and part of its seed).
        schedule: "halving" or "constant" step lengths (see step_sizes).
    """

    def __init__(self, objective: Objective, judge: Callable[[tf.Tensor], tf.Tensor],
                 threat: ThreatModel, steps: int = 100, restarts: int = 1, name: str = "pgd_judged",
                 schedule: str = "halving"):
        super().__init__(threat)
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1. Received: steps={steps}, "
                             f"restarts={restarts}")
        self.name, self.steps, self.restarts = name, int(steps), int(restarts)
        self._objective, self._judge = objective, judge
        self._sizes = tf.constant(step_sizes(threat.epsilon, steps, threat.step_size, schedule))
        self._run_once = tf.function(self._run_once_graph, reduce_retracing=True)

    def _run_once_graph(self, x, y, aux, seed):
        eps, norm = self.threat.epsilon, self.threat.norm
        if norm == "linf":
            delta = tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps)
        else:
            d = tf.random.stateless_normal(tf.shape(x), seed)
            delta = normalized_step(d, "l2") * eps * 0.5
        x_adv = self.threat.project(x + delta, x)

        def score(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                result = self._objective(z, y, aux)
            # An objective may hand back the judge's logits from its own forward pass (one
            # model call per step instead of two).
            obj, judged = result if isinstance(result, tuple) else (result, None)
            grad = tape.gradient(obj, z)
            return obj, grad, fooled(self._judge(z) if judged is None else judged, y)

        obj, grad, hit = score(x_adv)
        best_x, best_obj, done = x_adv, obj, hit
        for k in tf.range(self.steps):
            x_adv = self.threat.project(x_adv + self._sizes[k] * normalized_step(grad, norm), x)
            obj, grad, hit = score(x_adv)
            better = tf.logical_and(tf.logical_not(done), tf.logical_or(hit, obj > best_obj))
            mask = tf.reshape(better, [-1] + [1] * (len(x.shape) - 1))
            best_x = tf.where(mask, x_adv, best_x)
            best_obj = tf.where(better, obj, best_obj)
            done = tf.logical_or(done, hit)
        return best_x, done

    def run(self, x: np.ndarray, y: np.ndarray, seed, aux: np.ndarray | None = None) -> np.ndarray:
        """x_adv for (x, y); `aux` is passed to the objective (e.g. target classes)."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.int32)
        aux = np.zeros_like(y) if aux is None else np.asarray(aux, np.int32)
        out = x.copy()
        todo = np.ones(len(y), bool)
        for r in range(self.restarts):
            idx = np.flatnonzero(todo)
            if idx.size == 0:
                break
            x_r, hit = self._run_once(tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(aux[idx]),
                                      seed_tensor(seed, self.name, r))
            out[idx] = x_r.numpy()
            todo[idx[hit.numpy()]] = False
        return self.finish(x, out)
