"""APGD-CE, APGD-DLR and APGD-T: Auto-PGD as AutoAttack runs it (Croce & Hein, ICML 2020), native TF.

One run of N iterations, per example:
  x0   random start: L-inf x + eps * t / max|t|, t ~ U(-1, 1) (one coordinate on the boundary),
       L2 x + eps * t / |t|_2, t ~ N(0, 1); then clipped to [0, 1].
  x1   = P(x0 + eta * s(grad f(x0))), eta = 2 eps, s = sign (L-inf) or g / |g|_2 (L2).
  z    = P(x_k + eta * s(grad f(x_k)))
  x_k+1 = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_k-1))          (momentum)
  At each checkpoint w_j (see `checkpoints`) an example halves its eta and restarts from its
  highest-loss point x_max when `halving_decision` says so.

Where the paper leaves details open we follow the authors' reference implementation:
  - The checkpoint schedule is the reference code's integer recurrence (`checkpoints`), which
    equals the paper's ceil(p_j N) for N = 100 but not for every N.
  - Condition 1 counts the steps of the window whose loss exceeds the loss of the iterate just
    before it (not the best loss), and fires when that count is <= rho * span (the paper
    writes "<"); the count is taken on the iterates actually computed, so a restart from x_max
    does not reset the "previous loss". One deliberate difference: for the very first step the
    reference code compares f(x1) against an unfilled (zero) slot of its loss buffer through
    negative indexing; we compare it with f(x0), as the paper states.
  - Condition 2 (eta not halved at the last checkpoint and the best loss unchanged since) cannot
    fire at the first checkpoint: "halved last time" starts true.
  - On a restart from x_max the gradient is x_max's stored gradient, and the momentum term
    uses the iterate before the last step, which the restart leaves untouched.
  - The best loss is updated on a strict increase, x_max starts at x0.
  - Restarts and target classes run only on the examples not yet fooled; APGD-T's targets
    are the n highest-scoring classes other than y.

What differs from the reference by design (the project's rule for switching models): success
is decided by `Target.judge_logits` on every iterate (x0 included), gradients follow
`Target.logits`. An example fooled at any iterate of any run returns the last point that
fooled the judge; one never fooled returns its highest-loss point over all runs (AutoAttack
returns the clean image there). The targets come from the clean judged output. Random starts
are stateless draws keyed by (seed, batch, target, restart), so a run is a function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nfi_tf.attacks.base import Attack, Target, fooled, seed_tensor
from nfi_tf.attacks.losses import ce_loss_fn, dlr_loss_fn, targeted_dlr_loss_fn
from nfi_tf.attacks.threat import ThreatModel, normalized_step
from nfi_tf.vocab import Norm

LOSSES = {"ce": "apgd_ce", "dlr": "apgd_dlr", "targeted_dlr": "apgd_t"}
# Fewest classes each loss needs: DLR divides by z_(1) - z_(3), targeted DLR reads z_(4).
MIN_CLASSES = {"ce": 2, "dlr": 3, "targeted_dlr": 4}
MOMENTUM = 0.75  # weight of the new gradient step against the previous update
STEP_FACTOR = 2.0  # the initial step size is 2 eps, for L-inf and L2 alike
NORM_TINY = 1e-12  # AutoAttack's guard in the random start's normalization


def checkpoints(n_iter: int) -> list[int]:
    """The iterates after which APGD may halve its step: [0, w_1, w_2, ...] (w_j <= n_iter).

    The paper's schedule p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06),
    as the reference code implements it: the first window is floor(0.22 N), each next one
    floor(0.03 N) shorter, never shorter than floor(0.06 N) (each at least 1). Integer arithmetic
    keeps float rounding out of it (p_3 accumulated in floats gives ceil(57.000...01) = 58).
    """
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be >= 1. Received: n_iter={n_iter}")
    n_iter = int(n_iter)
    window = max(22 * n_iter // 100, 1)
    shortest = max(6 * n_iter // 100, 1)
    shrink = max(3 * n_iter // 100, 1)
    points = [0]
    while points[-1] + window <= n_iter:
        points.append(points[-1] + window)
        window = max(window - shrink, shortest)
    return points


def halving_decision(increase_counts, span, reduced_last, best_changed, rho: float = 0.75) -> tf.Tensor:
    """[B] bool: halve eta at this checkpoint.

    Condition 1: the loss rose (against the previous iterate) in at most rho * span of the
    `span` steps since the last checkpoint, i.e. the step is too large to make progress.
    Condition 2: eta was not halved at the last checkpoint (`reduced_last` false) and the best
    loss has not changed since then (`best_changed` false), i.e. progress stalled.
    """
    counts = tf.cast(increase_counts, tf.float32)
    too_few_increases = counts <= rho * tf.cast(span, tf.float32)
    stalled = tf.logical_and(tf.logical_not(tf.cast(reduced_last, tf.bool)),
                             tf.logical_not(tf.cast(best_changed, tf.bool)))
    return tf.logical_or(too_few_increases, stalled)


def top_other_classes(scores: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """[B, n] the n highest-scoring classes other than the label, best first (APGD-T's targets)."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[np.arange(len(labels)), labels] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :n]


def _spans(n_iter: int) -> np.ndarray:
    """[n_iter] int32: at step i (which computes iterate i+1), the checkpoint's window length
    if iterate i+1 is a checkpoint, else 0."""
    spans = np.zeros([n_iter], np.int32)
    points = checkpoints(n_iter)
    for before, after in zip(points[:-1], points[1:]):
        spans[after - 1] = after - before
    return spans


def _rows(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A [B] mask reshaped to broadcast against the [B, ...] tensor `like`."""
    return tf.reshape(mask, [-1] + [1] * (len(like.shape) - 1))


@dataclass(frozen=True)
class ApgdResult:
    """What one `APGD.attack` call found, per example.

    x_adv: the returned points (fooling the judge where `fooled`, else the highest-loss point).
    x_last: the last iterate of the last run the example took part in (x if it took part in none).
    fooled: the judge was fooled at some iterate (or on the clean input).
    loss: the highest loss any run reached (-inf for examples never attacked).
    """

    x_adv: np.ndarray
    x_last: np.ndarray
    fooled: np.ndarray
    loss: np.ndarray


class APGD(Attack):
    """Auto-PGD on `target` within `threat`: `loss` in LOSSES ("targeted_dlr" is APGD-T).

    `steps` iterations per run, `restarts` runs per target class (each on the examples still
    robust), `n_targets` target classes for APGD-T (capped at C - 1), `rho` the checkpoint
    threshold, `batch_size` examples per compiled call (None: all at once). The initial step
    is 2 eps (threat.step_size is not used).
    """

    def __init__(self, target: Target, threat: ThreatModel, loss: str = "ce", steps: int = 100,
                 restarts: int = 1, n_targets: int = 9, rho: float = 0.75, batch_size: int | None = None):
        super().__init__(threat)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}. Received: loss={loss!r}")
        for arg, value in (("steps", steps), ("restarts", restarts), ("n_targets", n_targets)):
            if int(value) < 1:
                raise ValueError(f"{arg} must be >= 1. Received: {arg}={value}")
        if not 0.0 < rho <= 1.0:
            raise ValueError(f"rho must be in (0, 1]. Received: rho={rho}")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1 or None. Received: batch_size={batch_size}")
        self.target = target
        self.loss = loss
        self.name = LOSSES[loss]
        self.steps = int(steps)
        self.restarts = int(restarts)
        self.n_targets = int(n_targets)
        self.rho = float(rho)
        self.batch_size = None if batch_size is None else int(batch_size)
        self._spans = tf.constant(_spans(self.steps))
        self._single_run = tf.function(self._single_run_graph, reduce_retracing=True)
        self._judge = tf.function(target.judge_logits, reduce_retracing=True)

    # ---- the compiled iteration ----

    def _objective(self, y, logits, targets):
        if self.loss == "ce":
            return ce_loss_fn(labels=y, logits=logits)
        if self.loss == "dlr":
            return dlr_loss_fn(labels=y, logits=logits)
        return targeted_dlr_loss_fn(labels=y, logits=logits, targets=targets)

    def _loss_and_grad(self, x_adv, y, targets):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            logits = self.target.logits(x_adv)
            loss = self._objective(y, logits, targets)
            # Examples are independent (inference mode): the sum's gradient is per-example.
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, x_adv), logits

    def _is_fooled(self, x_adv, logits, y):
        """The judge's verdict; the gradient logits serve when no separate judge is given."""
        if self.target.judge is None:
            return fooled(logits, y)
        return fooled(self.target.judge(x_adv), y)

    def _single_run_graph(self, x, y, targets, x0, spans):
        """One APGD run from x0. Returns (x_max, f_max, x_fool, fooled, x_last)."""
        project = lambda p: self.threat.project(p, x)  # noqa: E731
        eta = tf.fill(tf.concat([tf.shape(x)[:1], tf.ones([len(x.shape) - 1], tf.int32)], 0),
                      tf.constant(STEP_FACTOR * self.threat.epsilon, tf.float32))
        loss, grad, logits = self._loss_and_grad(x0, y, targets)
        is_fooled = self._is_fooled(x0, logits, y)
        x_fool, x_cur, x_prev, x_last = x0, x0, x0, x0
        x_best, grad_best, loss_best = x0, grad, loss
        loss_prev, loss_best_last_check = loss, loss
        increases = tf.zeros_like(loss)
        reduced_last = tf.ones_like(is_fooled)  # so condition 2 cannot fire at the first checkpoint
        for i in tf.range(tf.shape(spans)[0]):
            a = tf.where(i == 0, 1.0, MOMENTUM)  # the first step has no momentum
            z = project(x_cur + eta * normalized_step(grad, self.threat.norm))
            x_new = project(x_cur + a * (z - x_cur) + (1.0 - a) * (x_cur - x_prev))
            x_prev, x_last = x_cur, x_new
            loss, grad, logits = self._loss_and_grad(x_new, y, targets)
            now = self._is_fooled(x_new, logits, y)
            x_fool = tf.where(_rows(now, x_new), x_new, x_fool)
            is_fooled = tf.logical_or(is_fooled, now)
            increases += tf.cast(loss > loss_prev, tf.float32)
            loss_prev = loss
            better = loss > loss_best
            x_best = tf.where(_rows(better, x_new), x_new, x_best)
            grad_best = tf.where(_rows(better, x_new), grad, grad_best)
            loss_best = tf.where(better, loss, loss_best)
            # The checkpoint (a no-op at steps that are not one).
            span = spans[i]
            check = span > 0
            halve = tf.logical_and(check, halving_decision(
                increases, span, reduced_last, loss_best > loss_best_last_check, self.rho))
            eta = tf.where(_rows(halve, eta), eta / 2.0, eta)
            x_cur = tf.where(_rows(halve, x_new), x_best, x_new)
            grad = tf.where(_rows(halve, grad), grad_best, grad)
            reduced_last = tf.where(check, halve, reduced_last)
            loss_best_last_check = tf.where(check, loss_best, loss_best_last_check)
            increases = tf.where(check, tf.zeros_like(increases), increases)
        return x_best, loss_best, x_fool, is_fooled, x_last

    # ---- the driver ----

    def start(self, x, seed: int, restart: int = 0, target_index: int = 0, batch_index: int = 0):
        """The random start of every example of x for one (restart, target) run (a tf.Tensor)."""
        x = tf.convert_to_tensor(x, tf.float32)
        key = seed_tensor(int(seed), "apgd", int(batch_index), int(target_index), int(restart))
        axes = list(range(1, len(x.shape)))
        if self.threat.norm == Norm.LINF:
            t = tf.random.stateless_uniform(tf.shape(x), key, minval=-1.0, maxval=1.0)
            scale = tf.reduce_max(tf.abs(t), axis=axes, keepdims=True)
        else:
            t = tf.random.stateless_normal(tf.shape(x), key)
            scale = tf.sqrt(tf.reduce_sum(tf.square(t), axis=axes, keepdims=True))
        return tf.clip_by_value(x + self.threat.epsilon * t / (scale + NORM_TINY), 0.0, 1.0)

    def _targets(self, clean_scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        """[B, T] the class each run aims at (the label itself, unused, for untargeted losses)."""
        classes = clean_scores.shape[-1]
        if classes < MIN_CLASSES[self.loss]:
            raise ValueError(f"loss={self.loss!r} needs at least {MIN_CLASSES[self.loss]} classes. "
                             f"Received: {classes} classes")
        if self.loss != "targeted_dlr":
            return y[:, None]
        return top_other_classes(clean_scores, y, min(self.n_targets, classes - 1))

    def _attack_batch(self, x: np.ndarray, y: np.ndarray, seed: int, batch_index: int) -> ApgdResult:
        x_t = tf.constant(x)
        clean = self._judge(x_t).numpy()
        robust = np.argmax(clean, axis=-1) == y
        targets = self._targets(clean, y)
        x_adv, x_last = x.copy(), x.copy()
        best = np.full([len(x)], -np.inf, np.float32)
        for t in range(targets.shape[1]):
            for r in range(self.restarts):
                idx = np.flatnonzero(robust)
                if idx.size == 0:
                    break
                x0 = tf.gather(self.start(x_t, seed, r, t, batch_index), idx)
                x_max, f_max, x_fool, now, last = (v.numpy() for v in self._single_run(
                    tf.gather(x_t, idx), tf.constant(y[idx]), tf.constant(targets[idx, t]), x0,
                    self._spans))
                x_last[idx] = last
                higher = ~now & (f_max > best[idx])
                x_adv[idx[higher]] = x_max[higher]
                x_adv[idx[now]] = x_fool[now]
                best[idx] = np.maximum(best[idx], f_max)
                robust[idx[now]] = False
        return ApgdResult(x_adv=x_adv, x_last=x_last, fooled=~robust, loss=best)

    def _inside(self, x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
        """x_adv, re-projected only where float rounding put it outside the ball or [0, 1]
        (projecting a point that is inside can move it by one rounding, and flip a verdict)."""
        projected = self.finish(x, x_adv)
        in_range = (x_adv >= 0.0) & (x_adv <= 1.0)
        if self.threat.norm == Norm.LINF:
            ok = in_range & (np.abs(x_adv - x) <= np.float32(self.threat.epsilon))
        else:
            norms = np.sqrt(np.sum(np.square(x_adv - x), axis=tuple(range(1, x.ndim)), keepdims=True))
            ok = in_range & (norms <= np.float32(self.threat.epsilon))
        return np.where(ok, x_adv, projected).astype(np.float32)

    def attack(self, x: np.ndarray, y: np.ndarray, seed: int) -> ApgdResult:
        """The attack with its bookkeeping: returned points, last iterates, verdicts, losses."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int32).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"x and y must hold as many examples. Received: {len(x)} and {len(y)}")
        size = self.batch_size or max(len(x), 1)
        parts = [self._attack_batch(x[i:i + size], y[i:i + size], seed, i // size)
                 for i in range(0, len(x), size)]
        if not parts:
            empty = np.zeros([0], np.float32)
            return ApgdResult(x.copy(), x.copy(), np.zeros([0], bool), empty)
        joined = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("x_adv", "x_last",
                                                                               "fooled", "loss")}
        joined["x_adv"] = self._inside(x, joined["x_adv"])
        return ApgdResult(**joined)

    def run(self, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        return self.attack(x, y, seed).x_adv
