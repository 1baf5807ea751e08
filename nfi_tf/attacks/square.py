"""The Square attack, L-inf and L2 (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), as AutoAttack
runs it.

Square is a random search that only reads logits: no gradient, no graph, no framework on the
model side. Its model is therefore a plain query function, numpy NHWC float32 images ->
numpy logits, so the same attack runs on a Keras model (`keras_query`) and on an ONNX Runtime
session (whose `run` already is such a function). The query output is also the judge: its
argmax decides whether an example is fooled.

The L-inf algorithm, per restart, on the examples the query still classifies correctly:
  * start at vertical stripes: every (column, channel) of the image moves by +eps or -eps,
    the same along the whole column (stripes hurt CNNs far more than uniform noise does);
  * each iteration, for every example still classified correctly, redraw one square window
    of side s (its corner random per example) to x +/- eps, one sign per channel, and keep
    the candidate when it lowers the loss (margin z_y - max_{j != y} z_j, or -CE) or fools;
  * s shrinks with the schedule `p_schedule`: p is the fraction of pixels a window covers.
Fooled examples drop out of the batch, so each iteration pays queries only for the ones left.

The L2 algorithm, the same loop (same p schedule, same acceptance) with other proposals; every
point is x + eps * delta / |delta|_2 clipped to [0, 1], so on the eps sphere unless the box cuts:
  * start at a grid of h//5-sided blocks (from the image's centre), each block a
    `meta_pseudo_gaussian` pattern (two nested-rectangle bumps of opposite sign, one half above
    the other or, at random, side by side) with a random sign per channel;
  * each iteration draw two windows of side s (at least 3, odd): the perturbation in the second
    is removed and the first gets a fresh pseudo-gaussian pattern (random sign per channel) added
    to its old content, rescaled so that it carries the mass of both windows plus whatever the
    box had clipped off the budget; the whole delta is then renormalized to eps.

What differs from AutoAttack's PyTorch `SquareAttack` (L-inf), and why:
  * AutoAttack draws one window and one sign per channel for the whole batch each iteration;
    here each example draws its own, as the paper's algorithm (and its authors' reference
    code) does, so examples do not share their search. For L2 the same holds for both
    windows, the signs and the pattern's orientation (AutoAttack: one per batch, per block at
    the start).
  * success is argmax(query) != y (ties go to the lowest index, as argmax does), not
    margin <= 0, so a returned "fooled" point always fools the judge; an example at an exact
    tie with y winning it stays in the search.
  * AutoAttack returns the clean image for an example no restart fooled; here it returns the
    best point found (the lowest loss: the lowest margin with loss="margin"), as every attack
    in this package returns its best point for the examples it could not fool.
As in AutoAttack, a restart makes one query for the stripes and then up to `n_queries`
iterations of one query each, so an example can use up to n_queries + 1 queries per restart;
the clean check that decides which examples to attack is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from nfi_tf.attacks.base import Attack, numpy_rng
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.vocab import Norm

QueryFn = Callable[[np.ndarray], np.ndarray]
LOSSES = ("margin", "ce")

# AutoAttack's schedule, written for 10,000 iterations: after iteration `bound`, p is p_init / divisor.
_P_BREAKPOINTS = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                  (8000, 256))
_P_LAST_DIVISOR = 512
_SCHEDULE_ITERATIONS = 10_000


def p_schedule(iteration: int, n_queries: int, p_init: float = 0.8) -> float:
    """The fraction of pixels the window covers at `iteration` (0-based) of an `n_queries` run.

    The schedule's breakpoints are set for 10,000 iterations, so `iteration` is first rescaled
    to that length (int(iteration / n_queries * 10000), truncated as AutoAttack does): a short
    run shrinks its squares as fast, relative to its budget, as a long one.
    """
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1. Received: n_queries={n_queries}")
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0. Received: iteration={iteration}")
    _check_p_init(p_init)
    it = int(iteration / n_queries * _SCHEDULE_ITERATIONS)
    for bound, divisor in _P_BREAKPOINTS:
        if it <= bound:
            return p_init / divisor
    return p_init / _P_LAST_DIVISOR


def square_side(p: float, height: int, width: int, channels: int) -> int:
    """The side of a square window covering a fraction p of the image: max(round(sqrt(p * h * w)), 1).

    Written as p * n_features / c as the reference does (Python's round, ties to even). Capped at
    min(h, w) so a non-square image still fits the window (never binding when h == w, p <= 1).
    """
    n_features = height * width * channels
    side = max(int(round(math.sqrt(p * n_features / channels))), 1)
    return min(side, height, width)


def square_side_l2(p: float, height: int, width: int, channels: int) -> int:
    """The L2 version's window side: max(round(sqrt(p * h * w)), 3), made odd by adding 1, as the
    reference does; capped at min(h, w) so the window fits a small image (never binding from 7x7 up
    at p <= 0.8)."""
    n_features = height * width * channels
    side = max(int(round(math.sqrt(p * n_features / channels))), 3)
    if side % 2 == 0:
        side += 1
    return min(side, height, width)


def _nested_rectangles(rows: int, cols: int) -> np.ndarray:
    """[rows, cols] float64, unit L2 norm: a pseudo-gaussian bump of nested rectangles.

    The rectangles share the centre (rows // 2, cols // 2); the k-th (k = 0, 1, ...) reaches k
    pixels from it in both directions (Chebyshev distance) and adds 1 / (k + 1)^2, up to the
    one that covers the whole block. So a pixel at Chebyshev distance d from the centre holds the
    tail sum over k >= d of 1 / (k + 1)^2: the bump decays like 1/d from its centre.
    """
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols))
    distance = np.maximum(np.abs(np.arange(rows) - rows // 2)[:, None],
                          np.abs(np.arange(cols) - cols // 2)[None, :])
    n_rectangles = max(rows, cols) // 2 + 1
    tail = np.cumsum((1.0 / np.arange(1, n_rectangles + 1) ** 2)[::-1])[::-1]
    bump = tail[distance]
    return bump / np.sqrt(np.sum(bump ** 2))


def meta_pseudo_gaussian(side: int) -> np.ndarray:
    """[side, side] float64, unit L2 norm: a bump over the top side // 2 rows and a negative bump
    over the rest (the L2 Square's pattern; transposing it gives the left/right version)."""
    top = side // 2
    block = np.concatenate([_nested_rectangles(top, side), -_nested_rectangles(side - top, side)])
    return block / np.sqrt(np.sum(block ** 2))


def _oriented_patterns(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    """[count, side, side, 1] meta pseudo-gaussian patterns, each transposed with probability 1/2."""
    block = meta_pseudo_gaussian(side)
    flip = rng.integers(0, 2, size=count).astype(bool)
    return np.where(flip[:, None, None], block.T[None], block[None])[..., None]


def _l2_norms(t: np.ndarray) -> np.ndarray:
    """[B] L2 norm of each example (float64)."""
    return np.sqrt(np.sum(np.square(t.reshape(len(t), -1), dtype=np.float64), axis=1))


def _on_sphere(x: np.ndarray, delta: np.ndarray, eps: float) -> np.ndarray:
    """clip(x + eps * delta / |delta|_2, 0, 1) per example, as float32 (the L2 candidates)."""
    scale = eps / (_l2_norms(delta) + 1e-12)
    return np.clip(x + scale[:, None, None, None] * delta, 0.0, 1.0).astype(np.float32)


def _check_p_init(p_init: float) -> None:
    if not (math.isfinite(p_init) and 0 < p_init <= 1):
        raise ValueError(f"p_init must be in (0, 1]. Received: p_init={p_init}")


def margin_and_loss(logits: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """[B] margin z_y - max_{j != y} z_j and [B] loss to MINIMIZE (the margin, or -CE), in float64."""
    z = np.asarray(logits, np.float64)
    rows = np.arange(len(y))
    correct = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    margin = correct - others.max(axis=1)
    if loss == "margin":
        return margin, margin
    top = z.max(axis=1)
    log_sum_exp = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    return margin, correct - log_sum_exp  # -CE = log softmax_y


def _fooled(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=1) != y


def _window_mask(rows: np.ndarray, cols: np.ndarray, side: int, height: int, width: int) -> np.ndarray:
    """[K, H, W, 1] bool: True inside each example's side x side window at (rows[k], cols[k])."""
    r = np.arange(height)[None, :]
    c = np.arange(width)[None, :]
    in_rows = (r >= rows[:, None]) & (r < rows[:, None] + side)
    in_cols = (c >= cols[:, None]) & (c < cols[:, None] + side)
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def _random_signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2, size=shape, dtype=np.int8) * 2 - 1


class Square(Attack):
    """Square attack (L-inf or L2, the threat's norm) on a query function; after `run`,
    `queries_used` and `fooled` per example.

    Args:
        query: numpy float32 NHWC images in [0, 1] -> numpy logits [B, classes]. Its argmax is
            the judge. Called only on non-empty batches.
        threat: an L-inf or L2 ThreatModel (its epsilon is the budget; step_size is unused).
        n_queries: iterations per restart (AutoAttack's `n_queries`).
        p_init: the fraction of pixels the first windows cover (AutoAttack: 0.8, both norms).
        restarts: independent runs; each attacks only the examples no earlier run fooled.
        loss: "margin" (AutoAttack's default) or "ce" (minimizes -CE): the acceptance criterion.
    """

    name = "square"

    def __init__(self, query: QueryFn, threat: ThreatModel, n_queries: int = 5000, p_init: float = 0.8,
                 restarts: int = 1, loss: str = "margin"):
        super().__init__(threat)
        if threat.norm not in tuple(Norm):
            raise ValueError(f"Square has L-inf and L2 versions. Received: threat.norm={threat.norm!r}")
        if not callable(query):
            raise ValueError(f"query must be callable. Received: query={query!r}")
        if int(n_queries) != n_queries or n_queries < 1:
            raise ValueError(f"n_queries must be an integer >= 1. Received: n_queries={n_queries}")
        if int(restarts) != restarts or restarts < 1:
            raise ValueError(f"restarts must be an integer >= 1. Received: restarts={restarts}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss!r}")
        _check_p_init(p_init)
        self.query = query
        self.n_queries = int(n_queries)
        self.p_init = float(p_init)
        self.restarts = int(restarts)
        self.loss = loss
        self.queries_used: np.ndarray | None = None
        self.fooled: np.ndarray | None = None

    def _logits(self, images: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.query(np.ascontiguousarray(images, np.float32)))
        if logits.ndim != 2 or logits.shape[0] != images.shape[0]:
            raise ValueError(f"query must return logits [{images.shape[0]}, classes]. "
                             f"Received: logits.shape={logits.shape}")
        return logits

    def run(self, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        """x_adv for (x, y); sets `queries_used` (int64 [B]) and `fooled` (bool [B], judged by query)."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int64)
        if x.ndim != 4 or y.shape != (x.shape[0],):
            raise ValueError("x must be NHWC and y its [B] labels. "
                             f"Received: x.shape={x.shape}, y.shape={y.shape}")
        rng = numpy_rng(seed, "square")
        fooled = _fooled(self._logits(x), y) if len(x) else np.zeros(0, bool)
        x_adv = x.copy()
        best_loss = np.full(len(x), np.inf)
        queries = np.zeros(len(x), np.int64)
        for _ in range(self.restarts):
            todo = np.flatnonzero(~fooled)
            if todo.size == 0:
                break
            x_run, loss_run, fooled_run, queries_run = self._single_run(x[todo], y[todo], rng)
            queries[todo] += queries_run
            # A fooling point always wins; otherwise the lower-loss point of the restarts so far.
            take = fooled_run | (loss_run < best_loss[todo])
            x_adv[todo[take]] = x_run[take]
            best_loss[todo[take]] = loss_run[take]
            fooled[todo] = fooled_run
        self.queries_used = queries
        self.fooled = fooled
        # Returned as queried, not re-projected by `finish`: every point is built from
        # clip(x +/- eps, 0, 1) or clip(x + eps * delta / |delta|_2, 0, 1) and so already in the
        # ball, and a re-projection could move a judged point by a rounding error, which the
        # judge has not seen.
        return x_adv

    def _single_run(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        """One restart on examples the query classifies correctly: (x_best, loss, fooled, queries)."""
        n = len(x)
        if self.threat.norm == Norm.L2:
            x_best, propose = self._l2_search(x, rng)
        else:
            x_best, propose = self._linf_search(x, rng)
        logits = self._logits(x_best)
        _, loss = margin_and_loss(logits, y, self.loss)
        fooled = _fooled(logits, y)
        queries = np.ones(n, np.int64)
        for iteration in range(self.n_queries):
            active = np.flatnonzero(~fooled)
            if active.size == 0:
                break
            x_new = propose(iteration, active, x_best)
            logits = self._logits(x_new)
            _, loss_new = margin_and_loss(logits, y[active], self.loss)
            fooled_new = _fooled(logits, y[active])
            accept = (loss_new < loss[active]) | fooled_new
            x_best[active[accept]] = x_new[accept]
            loss[active[accept]] = loss_new[accept]
            fooled[active] = fooled_new
            queries[active] += 1
        return x_best, loss, fooled, queries

    def _linf_search(self, x: np.ndarray, rng: np.random.Generator):
        """(vertical-stripes start, proposal function) of the L-inf version."""
        n, height, width, channels = x.shape
        eps = np.float32(self.threat.epsilon)
        # Every candidate pixel is x + eps or x - eps (then clipped to [0, 1]): the L-inf search
        # space is the corners of the box, so both are computed once.
        up = np.clip(x + eps, 0.0, 1.0)
        down = np.clip(x - eps, 0.0, 1.0)
        stripes = _random_signs(rng, (n, 1, width, channels))
        start = np.where(stripes > 0, up, down)

        def propose(iteration, active, x_best):
            side = square_side(p_schedule(iteration, self.n_queries, self.p_init), height, width, channels)
            # Corners in [0, h - s) as the reference draws them (the last position only when s == h).
            rows = rng.integers(0, max(height - side, 1), size=active.size)
            cols = rng.integers(0, max(width - side, 1), size=active.size)
            signs = _random_signs(rng, (active.size, 1, 1, channels))
            window = _window_mask(rows, cols, side, height, width)
            corner = np.where(signs > 0, up[active], down[active])
            return np.where(window, corner, x_best[active])

        return start, propose

    def _l2_search(self, x: np.ndarray, rng: np.random.Generator):
        """(pseudo-gaussian grid start, proposal function) of the L2 version (module docstring)."""
        n, height, width, channels = x.shape
        eps = float(self.threat.epsilon)
        start = _on_sphere(x, self._l2_grid(rng, n, height, width, channels), eps)

        def propose(iteration, active, x_best):
            m = active.size
            side = square_side_l2(p_schedule(iteration, self.n_queries, self.p_init), height, width, channels)
            x_now = x[active]
            delta = x_best[active].astype(np.float64) - x_now
            rows1 = rng.integers(0, max(height - side, 1), size=m)
            cols1 = rng.integers(0, max(width - side, 1), size=m)
            rows2 = rng.integers(0, max(height - side, 1), size=m)
            cols2 = rng.integers(0, max(width - side, 1), size=m)
            pattern = _oriented_patterns(rng, m, side) * _random_signs(rng, (m, 1, 1, channels))
            window1 = _window_mask(rows1, cols1, side, height, width)
            window2 = _window_mask(rows2, cols2, side, height, width)
            # The first window's content per channel [m, s, s, c], and the mass at stake: what the
            # two windows hold now and what the box clipped off the eps budget.
            ex = np.arange(m)[:, None, None]
            at = (ex, rows1[:, None, None] + np.arange(side)[None, :, None],
                  cols1[:, None, None] + np.arange(side)[None, None, :])
            old = delta[at]
            old_norm = np.sqrt(np.sum(old ** 2, axis=(1, 2), keepdims=True))
            in_windows = _l2_norms(np.where(window1 | window2, delta, 0.0))
            missing = np.maximum(eps ** 2 - _l2_norms(delta) ** 2, 0.0)
            new = pattern + old / (1e-12 + old_norm)
            new_norm = np.sqrt(np.sum(new ** 2, axis=(1, 2), keepdims=True))
            mass = np.sqrt(missing / channels + in_windows ** 2)[:, None, None, None]
            delta = np.where(window2, 0.0, delta)
            delta[at] = new / (1e-12 + new_norm) * mass
            return _on_sphere(x_now, delta, eps)

        return start, propose

    @staticmethod
    def _l2_grid(rng: np.random.Generator, n: int, height: int, width: int, channels: int) -> np.ndarray:
        """[n, h, w, c] the L2 start's delta: blocks of side h // 5 tiled from offset
        (h - 5 s) // 2 in both directions, h // s rows and w // s columns of them (cut at the
        image's edge), each a pseudo-gaussian pattern with a random sign per channel."""
        side = max(height // 5, 1)
        offset = (height - 5 * side) // 2
        delta = np.zeros((n, height, width, channels))
        for i in range(height // side):
            top = offset + i * side
            for j in range(width // side):
                left = offset + j * side
                block = _oriented_patterns(rng, n, side) * _random_signs(rng, (n, 1, 1, channels))
                rows, cols = min(side, height - top), min(side, width - left)
                if rows > 0 and cols > 0:
                    delta[:, top:top + rows, left:left + cols] += block[:, :rows, :cols]
        return delta


def keras_query(logits_fn: Callable[[tf.Tensor], tf.Tensor], batch_size: int = 500) -> QueryFn:
    """A numpy query from an images -> logits TF function (e.g. `lambda t: model(t, training=False)`).

    The function is compiled once with tf.function (reduce_retracing, so the shrinking batches
    Square sends share one trace) and run in chunks of `batch_size` images.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size}")
    compiled = tf.function(logits_fn, reduce_retracing=True)

    def query(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        chunks = [np.asarray(compiled(tf.constant(images[i:i + batch_size])))
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    return query
