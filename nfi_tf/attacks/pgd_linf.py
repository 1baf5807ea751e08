"""L-inf PGD: CleverHans' tf2 `projected_gradient_descent`, with seeded starts.

Training (TRADES' KL objective) and evaluation (CE, CW margin, route-aware objectives on the
routed model) call `pgd` below with different `loss_fn`s (nfi_tf/attacks/losses.py).

CleverHans draws its random start with the stateful `tf.random.uniform`, whose stream cannot
be checkpointed or replayed, so a resumed run would see different starts than an uninterrupted
one. `pgd` therefore substitutes, for the duration of the call (i.e. while tracing under
tf.function), a stateless draw keyed by an explicit seed: same seed, same start, on any run.
It also offers TRADES' own start, x + 0.001 * N(0, 1) ("normal"), besides the uniform start in
the eps ball that Madry et al. and TRADES' evaluation use ("uniform").
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from unittest import mock

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from nfi_tf.config import AttackConfig

_PGD_MODULE = importlib.import_module("cleverhans.tf2.attacks.projected_gradient_descent")
RANDOM_STARTS = ("normal", "uniform", "none")
TRADES_START_STD = 0.001


@contextlib.contextmanager
def _seeded_random_start(kind: str, seed: tf.Tensor, replica=None):
    def draw(shape, ord, eps, dtype=tf.float32, seed_=None):  # noqa: A002 (CleverHans' name)
        del ord, seed_
        if replica is not None:
            # Draw for the whole global batch and keep this replica's rows, so that N replicas
            # start from exactly the points one device would use for the same global batch.
            replica_id, replicas = replica
            full = tf.concat([[shape[0] * replicas], shape[1:]], axis=0)
        else:
            full = shape
        if kind == "normal":
            noise = eps * tf.random.stateless_normal(full, seed=seed, dtype=dtype)
        else:
            noise = tf.random.stateless_uniform(full, seed=seed, minval=-eps, maxval=eps, dtype=dtype)
        if replica is not None:
            start = tf.cast(replica_id, tf.int32) * shape[0]
            noise = noise[start:start + shape[0]]
        return noise

    with mock.patch.object(_PGD_MODULE, "random_lp_vector", draw):
        yield


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
    """L-inf PGD maximizing `loss_fn(labels=y, logits=model_fn(x'))` within `attack.epsilon`.

    Args:
        model_fn: images -> logits (call the model in inference mode inside it).
        x: clean images in [0, 1].
        y: whatever `loss_fn` takes as labels (int labels, clean logits, ...).
        loss_fn: per-example loss to maximize, called as `loss_fn(labels=..., logits=...)`.
        attack: epsilon, step size and number of steps.
        seed: int32/int64 tensor of shape [2] for the random start (stateless).
        random_start: "normal" (TRADES' x + 0.001*N(0,1)), "uniform" (U(-eps, eps)), "none".
        num_steps: overrides attack.num_steps.
        replica: (replica id, number of replicas) under tf.distribute: this replica's slice of
            the global batch's random start (equal per-replica batches assumed).
    Returns:
        x' with |x' - x|_inf <= eps and x' in [0, 1], gradient-stopped.
    """
    if random_start not in RANDOM_STARTS:
        raise ValueError(f"random_start must be one of {RANDOM_STARTS}. Received: {random_start!r}")
    minmax = TRADES_START_STD if random_start == "normal" else attack.epsilon
    with _seeded_random_start(random_start, seed, replica):
        x_adv = projected_gradient_descent(
            model_fn,
            x,
            eps=float(attack.epsilon),
            eps_iter=float(attack.step_size),
            nb_iter=int(num_steps or attack.num_steps),
            norm=np.inf,
            loss_fn=loss_fn,
            clip_min=0.0,
            clip_max=1.0,
            y=y,
            rand_init=random_start != "none",
            rand_minmax=minmax,
            # CleverHans' checks call np.all on symbolic tensors: they cannot run in a graph.
            sanity_checks=False,
        )
    return tf.stop_gradient(x_adv)
