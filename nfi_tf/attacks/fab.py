"""FAB-T: the targeted Fast Adaptive Boundary attack, L-inf and L2 (Croce & Hein, ICML 2020), native TF.

FAB looks for the smallest perturbation (in the threat's norm) that changes the decision. At
each iterate x1 it linearizes f_t - f_y (target class t, true class y) and projects both x1 and
the clean point x0 onto the hyperplane where that linearization vanishes, intersected with the
pixel box [0, 1], each projection the closest point in the threat's norm. The next iterate is a
convex combination of the two projections (overshot by `eta`), biased toward the clean point by
alpha = min(|d1| / (|d1| + |d2|), alpha_max), |d1| the distance (in the norm) of the projection
from x1 and |d2| the one from x0: the closer the current iterate is to the boundary relative to
the clean point, the less it is pulled back. When an iterate is adversarial it is recorded if it
is the closest one so far and then pulled back toward x0 by `beta`, so the search keeps
shrinking the perturbation along the boundary.

As AutoAttack runs it (its standard version): each example is attacked with the classes ranked
2nd, 3rd, ... by the clean output as targets in turn (`n_targets` of them), each target with
`restarts` runs (the first from x itself, the others from x + eps/2 * u / |u|, u uniform in
[-1, 1] with |.|_inf for L-inf, u standard normal with |.|_2 for L2), and a target/restart only
runs on the examples not yet fooled within eps.

Both projections are exact. For either norm the closest box point on {<w, z> = b} moves each
coordinate toward the hyperplane by min(lambda * rate_i, room_i) (room_i: the distance to the
box face it moves toward), with rate_i = 1 for L-inf (Lagrange: a common radius) and |w_i| for
L2 (the KKT point of min |d|_2^2 is d = clip(-lambda w, box)); the gap closed is a piecewise-
linear nondecreasing function of lambda, solved by sorting its kinks (`_crossing`). AutoAttack
finds the same segment by bisection; the answer is the same point.

Success is decided by `target.judge_logits`, the output the model serves; the gradient comes
from `target.logits`. An example is returned as its closest judge-fooling point when that point
is within eps, and as x itself otherwise (FAB has no loss whose maximizer it could return).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nfi_tf.attacks.base import Attack, Target, fooled, seed_tensor
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.vocab import Norm

# The reference's floor on projection distances: keeps alpha defined at the boundary itself.
_MIN_DISTANCE = 1e-8
# "No adversarial point found yet" (the reference's 1e10).
_NOT_FOUND = 1e10


def _toward_hyperplane(points, w, b, lo, hi):
    """(need [N], direction [N, D], room [N, D]): the gap |<w, p> - b| to close, the sign each
    coordinate moves with to close it (-sign(gap) sign(w_i), 0 where w_i = 0), and how far it
    can move that way before it reaches the box face (0 where it does not move)."""
    dtype = points.dtype
    lo = tf.cast(lo, dtype)
    hi = tf.cast(hi, dtype)
    gap = tf.reduce_sum(w * points, axis=1) - b
    toward = tf.where(gap >= 0, tf.constant(-1, dtype), tf.constant(1, dtype))
    direction = toward[:, None] * tf.sign(w)
    room = tf.where(direction > 0, hi - points, points - lo)
    room = tf.where(direction == 0, tf.zeros_like(room), tf.maximum(room, 0))
    return tf.abs(gap), direction, room


def _crossing(kinks, weight, need):
    """[N] the smallest lam >= 0 with h(lam) = sum_i weight_i min(lam, kinks_i) = need, per row.

    h is nondecreasing and piecewise linear with kinks at `kinks` [N, D] (>= 0). Sorting them
    gives h at every kink with two cumulative sums, the segment holding lam by counting kinks
    with h < need, and lam by solving the linear piece there: exact, O(D log D) per row. When
    even h(max kink) < need the hyperplane is out of reach: lam = max kink (every coordinate at
    its face: the box corner closest to the hyperplane, as in the reference implementation).
    """
    dtype = kinks.dtype
    order = tf.argsort(kinks, axis=1)
    kinks_sorted = tf.gather(kinks, order, batch_dims=1)
    weight_sorted = tf.gather(weight, order, batch_dims=1)
    used = tf.cumsum(weight_sorted * kinks_sorted, axis=1, exclusive=True)
    slope = tf.reduce_sum(weight_sorted, axis=1, keepdims=True) - tf.cumsum(
        weight_sorted, axis=1, exclusive=True)
    h_at_kinks = used + kinks_sorted * slope

    dims = tf.shape(kinks)[1]
    segment = tf.reduce_sum(tf.cast(h_at_kinks < need[:, None], tf.int32), axis=1)
    feasible = segment < dims
    k = tf.minimum(segment, dims - 1)[:, None]
    used_k = tf.gather(used, k, batch_dims=1)[:, 0]
    slope_k = tf.gather(slope, k, batch_dims=1)[:, 0]
    tiny = tf.constant(np.finfo(dtype.as_numpy_dtype).tiny, dtype)
    lam = tf.maximum((need - used_k) / tf.maximum(slope_k, tiny), 0)
    return tf.where(feasible, lam, tf.reduce_max(kinks, axis=1))


def _hyperplane_box_delta(points, w, b, lo, hi):
    """[N, D] delta of minimal L-inf norm with <w, points + delta> = b and lo <= points + delta <= hi.

    Every coordinate moves toward the hyperplane by min(r, room_i); for an L-inf radius r the
    gap closed is h(r) = sum_i |w_i| min(r, room_i), kinks at the rooms: the projection is
    direction * min(r*, room) for the smallest r* with h(r*) = |c| (`_crossing`).
    """
    need, direction, room = _toward_hyperplane(points, w, b, lo, hi)
    radius = _crossing(room, tf.abs(w), need)
    return direction * tf.minimum(radius[:, None], room)


def _hyperplane_box_delta_l2(points, w, b, lo, hi):
    """[N, D] delta of minimal L2 norm with <w, points + delta> = b and lo <= points + delta <= hi.

    The KKT point of min |d|_2^2 on the hyperplane and the box is d_i = direction_i *
    min(lam |w_i|, room_i) for one lam >= 0: the unconstrained projection -c w / |w|_2^2 with
    the coordinates that would leave the box stopped at their face. The gap closed,
    h(lam) = sum_i w_i^2 min(lam, room_i / |w_i|), has its kinks at room_i / |w_i|, so lam is
    `_crossing` with weights w_i^2. Unreachable hyperplanes give the closest box corner, as for
    L-inf. Coordinates with w_i^2 = 0 (also by float underflow) do not move.
    """
    need, direction, room = _toward_hyperplane(points, w, b, lo, hi)
    rate = tf.abs(w)
    weight = tf.square(w)
    active = weight > 0
    kinks = tf.where(active, room / tf.where(active, rate, tf.ones_like(rate)), tf.zeros_like(room))
    lam = _crossing(kinks, tf.where(active, weight, tf.zeros_like(weight)), need)
    step = tf.minimum(lam[:, None] * rate, room)
    return tf.where(active, direction * step, tf.zeros_like(step))


def _checked(points, w, b):
    points = tf.convert_to_tensor(points)
    w = tf.convert_to_tensor(w, points.dtype)
    b = tf.convert_to_tensor(b, points.dtype)
    if points.shape.rank != 2 or w.shape.rank != 2 or b.shape.rank != 1:
        raise ValueError(f"points and w must be [N, D] and b [N]. Received: points.shape={points.shape}, "
                         f"w.shape={w.shape}, b.shape={b.shape}")
    return points, w, b


def project_linf_hyperplane_box(points, w, b, lo=0.0, hi=1.0):
    """The L-inf projection of each row of `points` [N, D] onto {z : <w, z> = b} within [lo, hi]^D.

    `w` [N, D] and `b` [N] give one hyperplane per row. Returns the closest point (in L-inf) of
    the hyperplane-box intersection; when the intersection is empty, the box corner that comes
    closest to the hyperplane (what FAB steps toward then).
    """
    points, w, b = _checked(points, w, b)
    return points + _hyperplane_box_delta(points, w, b, lo, hi)


def project_l2_hyperplane_box(points, w, b, lo=0.0, hi=1.0):
    """The L2 projection of each row of `points` [N, D] onto {z : <w, z> = b} within [lo, hi]^D.

    As `project_linf_hyperplane_box`, in the Euclidean norm: the closest point of the
    intersection, or (intersection empty) the box corner closest to the hyperplane.
    """
    points, w, b = _checked(points, w, b)
    return points + _hyperplane_box_delta_l2(points, w, b, lo, hi)


def random_start(x0: tf.Tensor, epsilon: float, seed: tf.Tensor, norm: str = Norm.LINF) -> tf.Tensor:
    """The reference's restart point, clipped to [0, 1]: x0 + eps/2 * u / |u|_inf with
    u ~ U(-1, 1)^D for L-inf, x0 + eps/2 * u / |u|_2 with u ~ N(0, 1)^D for L2."""
    axes = list(range(1, len(x0.shape)))
    if norm == Norm.L2:
        u = tf.random.stateless_normal(tf.shape(x0), seed=seed, dtype=x0.dtype)
        scale = tf.sqrt(tf.reduce_sum(tf.square(u), axis=axes, keepdims=True))
        return tf.clip_by_value(x0 + 0.5 * epsilon * u / scale, 0.0, 1.0)
    u = tf.random.stateless_uniform(tf.shape(x0), seed=seed, minval=-1.0, maxval=1.0, dtype=x0.dtype)
    scale = tf.reduce_max(tf.abs(u), axis=axes, keepdims=True)
    return tf.clip_by_value(x0 + 0.5 * epsilon * u / scale, 0.0, 1.0)


def _distances(a: np.ndarray, b: np.ndarray, norm: str) -> np.ndarray:
    """[B] |a - b| per example in the threat's norm (L2 summed in float64)."""
    diff = (a - b).reshape(len(a), -1)
    if norm == Norm.L2:
        return np.sqrt(np.sum(np.square(diff, dtype=np.float64), axis=1))
    return np.abs(diff).max(axis=1)


def _pick(logits: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    return tf.gather(logits, tf.cast(classes, tf.int32)[:, None], batch_dims=1)[:, 0]


def _rank_targets(clean_logits: np.ndarray, y: np.ndarray, n_targets: int) -> np.ndarray:
    """[B, n] the other classes from the highest-scoring down (the reference's 2nd, 3rd, ...)."""
    scores = np.array(clean_logits, np.float64)
    scores[np.arange(len(y)), y] = -np.inf
    # A stable sort on the negated scores keeps ties in index order.
    return np.argsort(-scores, axis=1, kind="stable")[:, :n_targets].astype(np.int32)


@dataclass(frozen=True)
class FABResult:
    """`x_adv` [B, ...]; `fooled` [B] the judge is fooled at x_adv; `distance` [B] |x_adv - x| in
    the threat's norm (L-inf or L2)."""

    x_adv: np.ndarray
    fooled: np.ndarray
    distance: np.ndarray


class FABTargeted(Attack):
    """FAB-T (L-inf or L2, the threat's norm): `steps` iterations per target and restart,
    `n_targets` targets."""

    name = "fab_t"

    def __init__(self, target: Target, threat: ThreatModel, steps: int = 100, restarts: int = 1,
                 n_targets: int = 9, alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9):
        super().__init__(threat)
        if threat.norm not in tuple(Norm):
            raise ValueError(f"FABTargeted has L-inf and L2 versions. Received: threat.norm={threat.norm!r}")
        for name, value in (("steps", steps), ("restarts", restarts), ("n_targets", n_targets)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value}")
        if not 0 < alpha_max <= 1:
            raise ValueError(f"alpha_max must be in (0, 1]. Received: alpha_max={alpha_max}")
        if not eta >= 1:
            raise ValueError(f"eta must be >= 1 (it overshoots the boundary). Received: eta={eta}")
        if not 0 < beta < 1:
            raise ValueError(f"beta must be in (0, 1). Received: beta={beta}")
        self.target = target
        self.steps, self.restarts, self.n_targets = int(steps), int(restarts), int(n_targets)
        self.alpha_max, self.eta, self.beta = float(alpha_max), float(eta), float(beta)
        self._search = tf.function(self._search_impl, reduce_retracing=True)
        self._judge = tf.function(self.target.judge_logits, reduce_retracing=True)

    # ---- the compiled search: `steps` FAB iterations on one batch, one target ----

    def _iteration(self, x0, y, t, x1, best, best_norm):
        batch = tf.shape(x0)[0]
        with tf.GradientTape() as tape:
            tape.watch(x1)
            logits = self.target.logits(x1)
            diff = _pick(logits, t) - _pick(logits, y)
        # The rows are independent (inference mode), so the gradient of the sum is per-example.
        w = tf.reshape(tape.gradient(diff, x1), [batch, -1])
        x0f = tf.reshape(x0, [batch, -1])
        x1f = tf.reshape(x1, [batch, -1])
        b = tf.reduce_sum(w * x1f, axis=1) - diff
        l2 = self.threat.norm == Norm.L2
        project = _hyperplane_box_delta_l2 if l2 else _hyperplane_box_delta
        delta = project(tf.concat([x1f, x0f], 0), tf.concat([w, w], 0), tf.concat([b, b], 0), 0.0, 1.0)
        d1, d2 = delta[:batch], delta[batch:]
        a1 = tf.maximum(self._norm(d1, keepdims=True), _MIN_DISTANCE)
        a2 = tf.maximum(self._norm(d2, keepdims=True), _MIN_DISTANCE)
        alpha = tf.clip_by_value(a1 / (a1 + a2), 0.0, self.alpha_max)
        x1f = tf.clip_by_value((x1f + self.eta * d1) * (1 - alpha) + (x0f + self.eta * d2) * alpha,
                               0.0, 1.0)
        x1 = tf.reshape(x1f, tf.shape(x0))

        adv = fooled(self.target.judge_logits(x1), y)
        norm = self._norm(x1f - x0f)
        closer = tf.logical_and(adv, norm < best_norm)
        shape = tf.concat([[batch], tf.ones([len(x0.shape) - 1], tf.int32)], 0)
        best = tf.where(tf.reshape(closer, shape), x1, best)
        best_norm = tf.where(closer, norm, best_norm)
        x1 = tf.where(tf.reshape(adv, shape), x0 + self.beta * (x1 - x0), x1)
        return x1, best, best_norm

    def _norm(self, flat, keepdims=False):
        """|row| of a [N, D] tensor in the threat's norm."""
        if self.threat.norm == Norm.L2:
            return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1, keepdims=keepdims))
        return tf.reduce_max(tf.abs(flat), axis=1, keepdims=keepdims)

    def _search_impl(self, x0, y, t, x_start, steps):
        """(closest judge-fooling iterate, its distance in the norm or _NOT_FOUND) per example."""
        best_norm = tf.fill(tf.shape(y), tf.constant(_NOT_FOUND, x0.dtype))

        def body(i, x1, best, best_norm):
            return (i + 1, *self._iteration(x0, y, t, x1, best, best_norm))

        _, _, best, best_norm = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), x_start, x0, best_norm))
        return best, best_norm

    # ---- the driver: targets x restarts on the examples still robust ----

    def run(self, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        return self.run_with_info(x, y, seed).x_adv

    def run_with_info(self, x: np.ndarray, y: np.ndarray, seed: int) -> FABResult:
        """`run`, with which examples fool the judge at x_adv and at what distance (threat's norm)."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int32)
        if y.shape != x.shape[:1]:
            raise ValueError(f"y must be [B] for x [B, ...]. Received: x.shape={x.shape}, y.shape={y.shape}")
        norm = self.threat.norm
        eps = np.float32(self.threat.epsilon) if norm == Norm.LINF else np.float64(self.threat.epsilon)
        clean = self._judge(tf.constant(x)).numpy()
        robust = np.argmax(clean, axis=1) == y
        n_targets = min(self.n_targets, clean.shape[1] - 1)
        targets = _rank_targets(clean, y, n_targets)
        x_adv = x.copy()
        steps = tf.constant(self.steps)
        for k in range(n_targets):
            for restart in range(self.restarts):
                idx = np.flatnonzero(robust)
                if idx.size == 0:
                    break
                x0 = tf.constant(x[idx])
                start = x0 if restart == 0 else random_start(x0, float(eps),
                                                             seed_tensor(seed, self.name, k, restart), norm)
                best, _ = self._search(x0, tf.constant(y[idx]), tf.constant(targets[idx, k]), start, steps)
                best = best.numpy()
                # Accept by the numpy distance, the one callers check the eps ball with.
                dist = _distances(best, x[idx], norm)
                ok = (dist > 0) & (dist <= eps)
                x_adv[idx[ok]] = best[ok]
                robust[idx[ok]] = False
        return self._settle(x, y, x_adv)

    def _settle(self, x, y, x_adv) -> FABResult:
        """Judge the whole batch once more; a point the judge does not confirm goes back to x.

        Boundary points are close to a tie, and a different batch composition may round the
        judge's logits differently: the returned flag is the judge's verdict on what is returned.
        """
        changed = np.any((x_adv != x).reshape(len(x), -1), axis=1)
        is_fooled = fooled(self._judge(tf.constant(x_adv)), y).numpy()
        x_adv = np.where((changed & ~is_fooled).reshape((-1,) + (1,) * (x.ndim - 1)), x, x_adv)
        is_fooled = fooled(self._judge(tf.constant(x_adv)), y).numpy()
        distance = _distances(x_adv, x, self.threat.norm)
        return FABResult(x_adv.astype(np.float32), is_fooled, distance)
