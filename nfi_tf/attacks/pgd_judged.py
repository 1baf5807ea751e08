"""PGD on any differentiable objective, every iterate judged by the served output.

The route-aware attacks on the routed model (docs/method.md §4) ascend objectives that are not a
loss of one logits vector (all heads' margins at once; "make the three argmaxes agree on a wrong
class"; a switch relaxed at some temperature) while the question is always whether the *hard*
routed output is fooled. `JudgedPGD` takes the objective and the judge separately: it ascends
`objective(x_adv, y, aux)` and keeps, per example, any iterate that fools `judge`, else the
highest-objective iterate.

It is the one PGD core (`pgd_core.PGD`, keep="best", a uniform random start in the ball) with
restarts on the examples not yet fooled, numpy in and out. Steps of length eps/4 (or the threat
model's step_size); schedule "halving" halves it at 50% and again at 75% of the steps, "constant"
keeps it (PGD as TRADES evaluates, for the PGD and CW columns).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from nfi_tf.attacks.base import Attack
from nfi_tf.attacks.pgd_core import PGD, SCHEDULES, step_sizes
from nfi_tf.attacks.seeds import stateless_seed
from nfi_tf.attacks.threat import ThreatModel

Objective = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]

__all__ = ["SCHEDULES", "JudgedPGD", "Objective", "step_sizes"]


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
        self._core = PGD(threat, self.steps, schedule, random_start="uniform", keep="best")
        self._run_once = tf.function(self._run_once_graph, reduce_retracing=True)

    def _run_once_graph(self, x, y, aux, seed):
        return self._core(lambda z: self._objective(z, y, aux), x, seed, judge=self._judge, labels=y)

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
                                      stateless_seed(seed, self.name, r))
            out[idx] = x_r.numpy()
            todo[idx[hit.numpy()]] = False
        return self.finish(x, out)
