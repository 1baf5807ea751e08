"""Projected gradient ascent, once: the PGD of training, of the per-epoch check and of the evaluation.

`PGD(threat, steps, schedule, random_start, keep)(objective, x, seed, judge, labels, replica)`
ascends any per-example objective inside the threat model's ball and [0, 1]:

- start: "none" (x), "uniform" (L-inf: U(-eps, eps) per pixel, Madry et al. and TRADES'
  evaluation; L2: a random direction at radius eps/2), "normal" (TRADES' training start,
  x + 0.001 * N(0, 1)); drawn statelessly from `seed` (nfi_tf/attacks/seeds.py), so the start is
  a function of the seed alone and a resumed run attacks as an uninterrupted one. Under
  tf.distribute (`replica`) each replica draws the global batch's noise and keeps its rows, so
  N replicas start where one device would.
- step: sign of the gradient (L-inf) or its normalized direction (L2); lengths "constant" (the
  threat model's step_size) or "halving" (halved at 50% and again at 75% of the steps, so the
  late iterates refine instead of bouncing across the ball).
- judging: without a judge the last iterate is returned (keep="last", TRADES' PGD) or the
  highest-objective one (keep="best"). With a judge (the served output, e.g. the hard routed
  logits) every iterate, the start and the last included, is judged, and an example keeps the
  first iterate that fools it; the others get the last or the best iterate as above.

**CleverHans inside, why this way.** Training promises CleverHans PGD examples. CleverHans'
`projected_gradient_descent` draws its random start with the stateful `tf.random.uniform` (not
replayable after a resume, and no TRADES start); feeding it a seeded start would mean patching
its module during the call, as this project once did. Its `rand_init=False` is no way out: it
then starts at its `x` and measures the eps ball from that `x`, so a start applied before the
call would move the ball (iterates up to 2 eps from the image, cut back only at the end). So
this loop *is* `projected_gradient_descent`'s loop — per step CleverHans' FGM step
(`optimize_linear`, then clip to [0, 1]) and its projection (`clip_eta` around the original x,
then clip to [0, 1]), in its order — plus what it lacks: our seeded start (clipped as it clips
its own), and the gradient taken here, so that one forward pass can also give the objective's
value and the judged output. `tests/test_pgd_core.py` pins the result to CleverHans'
`projected_gradient_descent` on the same start (rand_init=False for "none"; for a random start
the test replaces CleverHans' draw by ours, in the test only). Training's examples came out
bit-identical to the patched call this replaced (same seed, eager and compiled). For L-inf,
`clip_eta` is the same clip as `ThreatModel.project`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from cleverhans.tf2.utils import clip_eta, optimize_linear

from nfi_tf.attacks.base import fooled
from nfi_tf.attacks.threat import ThreatModel, normalized_step
from nfi_tf.config import AttackConfig
from nfi_tf.vocab import Norm

# images -> [B] objective to maximize, or ([B] objective, judged logits) from one forward pass.
Objective = Callable[[tf.Tensor], "tf.Tensor | tuple[tf.Tensor, tf.Tensor]"]

RANDOM_STARTS = ("normal", "uniform", "none")
SCHEDULES = ("halving", "constant")
KEEPS = ("last", "best")
TRADES_START_STD = 0.001
_ORD = {Norm.LINF: np.inf, Norm.L2: 2}  # CleverHans' names of the norms


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


def start_noise(kind: str, shape, threat: ThreatModel, seed: tf.Tensor, replica=None,
                dtype=tf.float32) -> tf.Tensor:
    """The random start's offset from x (before clipping), a stateless draw keyed by `seed`.

    `replica`: (replica id, number of replicas) under tf.distribute: this replica's rows of the
    draw for the whole global batch (equal per-replica batches assumed)."""
    if kind not in RANDOM_STARTS:
        raise ValueError(f"random_start must be one of {RANDOM_STARTS}. Received: random_start={kind!r}")
    if kind == "none":
        return tf.zeros(shape, dtype)
    full = shape
    if replica is not None:
        replica_id, replicas = replica
        full = tf.concat([[shape[0] * replicas], shape[1:]], axis=0)
    if kind == "normal":
        noise = tf.cast(TRADES_START_STD, dtype) * tf.random.stateless_normal(full, seed=seed, dtype=dtype)
    elif threat.norm == Norm.LINF:
        eps = tf.cast(threat.epsilon, dtype)
        noise = tf.random.stateless_uniform(full, seed=seed, minval=-eps, maxval=eps, dtype=dtype)
    else:
        d = tf.random.stateless_normal(full, seed=seed, dtype=dtype)
        noise = normalized_step(d, Norm.L2) * (threat.epsilon * 0.5)
    if replica is not None:
        first = tf.cast(replica_id, tf.int32) * shape[0]
        noise = noise[first:first + shape[0]]
    return noise


def start_point(x: tf.Tensor, kind: str, threat: ThreatModel, seed: tf.Tensor,
                replica=None) -> tf.Tensor:
    """The first iterate: x plus the start noise, clipped into the ball and [0, 1] as CleverHans
    clips its own random start."""
    eta = clip_eta(start_noise(kind, tf.shape(x), threat, seed, replica, x.dtype),
                   _ORD[threat.norm], threat.epsilon)
    return tf.clip_by_value(x + eta, 0.0, 1.0)


def loss_objective(model_fn: Callable[[tf.Tensor], tf.Tensor], loss_fn: Callable[..., tf.Tensor],
                   labels) -> Objective:
    """The objective CleverHans ascends: `loss_fn(labels=labels, logits=model_fn(x'))`."""
    return lambda z: loss_fn(labels=labels, logits=model_fn(z))


@dataclass(frozen=True)
class PGD:
    """The settings of one projected gradient ascent; call it (in a graph or eagerly) to run it.

    Args:
        threat: norm, eps, and the first step length (default eps/4).
        steps: gradient steps (the objective is evaluated steps times, steps + 1 when judging
            or keeping the best iterate).
        schedule: "constant" or "halving" step lengths (see `step_sizes`).
        random_start: "none", "uniform" or "normal" (see the module docstring).
        keep: without a judge's verdict, "last" or "best" (highest objective) iterate.
    """

    threat: ThreatModel
    steps: int
    schedule: str = "constant"
    random_start: str = "uniform"
    keep: str = "last"

    def __post_init__(self):
        if self.random_start not in RANDOM_STARTS:
            raise ValueError(f"random_start must be one of {RANDOM_STARTS}. "
                             f"Received: random_start={self.random_start!r}")
        if self.keep not in KEEPS:
            raise ValueError(f"keep must be one of {KEEPS}. Received: keep={self.keep!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}. Received: schedule={self.schedule!r}")
        if int(self.steps) < 0:
            raise ValueError(f"steps must be >= 0. Received: steps={self.steps}")

    def step_sizes(self) -> np.ndarray:
        return step_sizes(self.threat.epsilon, int(self.steps), self.threat.step_size, self.schedule)

    def __call__(self, objective: Objective, x: tf.Tensor, seed: tf.Tensor,
                 judge: Callable[[tf.Tensor], tf.Tensor] | None = None, labels=None,
                 replica=None, start: tf.Tensor | None = None,
                 unroll: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
        """(x_adv, fooled): the kept iterate per example and whether it fooled the judge (all
        False without a judge). `labels` are the judge's true labels; `seed` a [2] int key.
        `start`: the first iterate instead of the random start (projected into the ball around
        x): a descent that continues from an earlier one. `unroll=False`: a graph loop instead
        of one graph node per step, for long ascents that need not be unrolled."""
        x = tf.convert_to_tensor(x, tf.float32)
        if start is None:
            x_adv = start_point(x, self.random_start, self.threat, seed, replica)
        else:
            x_adv = self.threat.project(tf.convert_to_tensor(start, tf.float32), x)
        step = _Step(self, objective, x, judge, labels)
        if judge is None and self.keep == "last":
            if not unroll:
                _, x_adv = tf.while_loop(lambda k, _: k < self.steps,
                                         lambda k, z: (k + 1, step.ascend(z, step.score(z)[1], k)),
                                         (tf.constant(0), x_adv))
                return x_adv, tf.zeros(tf.shape(x)[:1], tf.bool)
            # Unrolled, as CleverHans' own loop is (a Python loop over the steps): training's
            # step is the graph it always was, so TensorFlow's FLOP count (bench, test_flops)
            # sees every iteration and XLA fuses across them.
            for k in range(int(self.steps)):
                x_adv = step.ascend(x_adv, step.score(x_adv)[1], k)
            return x_adv, tf.zeros(tf.shape(x)[:1], tf.bool)
        return step.judged_loop(x_adv)


class _Step:
    """One PGD run's pieces: the objective's value, gradient and verdict, the ascent step, and
    the judged loop (which keeps, per example, a fooling or else the last or best iterate)."""

    def __init__(self, pgd: PGD, objective: Objective, x: tf.Tensor, judge, labels):
        self.pgd, self.objective, self.x, self.judge, self.labels = pgd, objective, x, judge, labels
        self.norm, self.eps = _ORD[pgd.threat.norm], float(pgd.threat.epsilon)
        self.sizes = tf.constant(pgd.step_sizes())
        self.batch = tf.shape(x)[:1]

    def score(self, z, gradient=True):
        if gradient:
            with tf.GradientTape() as tape:
                tape.watch(z)
                obj, judged = _split(self.objective(z))
            grad = tape.gradient(obj, z)
        else:
            (obj, judged), grad = _split(self.objective(z)), None
        if self.judge is None:
            return obj, grad, tf.zeros(self.batch, tf.bool)
        return obj, grad, fooled(self.judge(z) if judged is None else judged, self.labels)

    def ascend(self, z, grad, k):
        # CleverHans' projected_gradient_descent, one iteration: its FGM step (clipped to
        # [0, 1]), then its projection onto the ball around the original x, clipped again.
        z = tf.clip_by_value(z + optimize_linear(grad, self.sizes[k], self.norm), 0.0, 1.0)
        return tf.clip_by_value(self.x + clip_eta(z - self.x, self.norm, self.eps), 0.0, 1.0)

    def record(self, z, obj, hit, best_x, best_obj, done):
        # An example already fooled keeps its point; otherwise a fooling iterate is taken,
        # and else the last one ("last") or a higher-objective one ("best").
        obj = tf.cast(obj, tf.float32)
        take = tf.logical_not(done)
        if self.pgd.keep == "best":
            take = tf.logical_and(take, tf.logical_or(hit, obj > best_obj))
        mask = tf.reshape(take, [-1] + [1] * (len(self.x.shape) - 1))
        return tf.where(mask, z, best_x), tf.where(take, obj, best_obj), tf.logical_or(done, hit)

    def judged_loop(self, x_adv):
        def body(k, z, best_x, best_obj, done):
            obj, grad, hit = self.score(z)
            best_x, best_obj, done = self.record(z, obj, hit, best_x, best_obj, done)
            return k + 1, self.ascend(z, grad, k), best_x, best_obj, done

        init = (tf.constant(0), x_adv, x_adv, tf.fill(self.batch, -np.inf), tf.zeros(self.batch, tf.bool))
        _, x_adv, best_x, best_obj, done = tf.while_loop(lambda k, *_: k < self.pgd.steps, body, init)
        obj, _, hit = self.score(x_adv, gradient=False)
        best_x, _, done = self.record(x_adv, obj, hit, best_x, best_obj, done)
        return best_x, done


def _split(result):
    """(objective, judged logits or None) from what an objective returned."""
    return result if isinstance(result, tuple) else (result, None)


def pgd(
    model_fn: Callable[[tf.Tensor], tf.Tensor],
    x: tf.Tensor,
    y: tf.Tensor,
    loss_fn: Callable[..., tf.Tensor],
    attack: AttackConfig,
    seed: tf.Tensor,
    random_start: str = "uniform",
    num_steps: int | None = None,
    replica: tuple | None = None,
) -> tf.Tensor:
    """L-inf PGD maximizing `loss_fn(labels=y, logits=model_fn(x'))` within `attack.epsilon`,
    constant step, last iterate: CleverHans' PGD with a seeded start (the module docstring).

    Args:
        model_fn: images -> logits (call the model in inference mode inside it).
        x: clean images in [0, 1].
        y: whatever `loss_fn` takes as labels (int labels, clean logits, ...).
        loss_fn: per-example loss to maximize, called as `loss_fn(labels=..., logits=...)`.
        attack: epsilon, step size and number of steps.
        seed: int32/int64 tensor of shape [2] for the random start (seeds.stateless_seed).
        random_start: "normal" (TRADES' x + 0.001*N(0,1)), "uniform" (U(-eps, eps)), "none".
        num_steps: overrides attack.num_steps.
        replica: (replica id, number of replicas) under tf.distribute (see `start_noise`).
    Returns:
        x' with |x' - x|_inf <= eps and x' in [0, 1], gradient-stopped.
    """
    core = PGD(ThreatModel(Norm.LINF, float(attack.epsilon), float(attack.step_size)),
               int(num_steps or attack.num_steps), "constant", random_start, "last")
    x_adv, _ = core(loss_objective(model_fn, loss_fn, y), x, seed, replica=replica)
    return tf.stop_gradient(x_adv)
