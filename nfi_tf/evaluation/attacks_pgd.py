"""PGD-CE and CW-Linf against one output of the classifier, as TRADES evaluates: the one PGD core
(`nfi_tf.attacks.pgd_core`: CleverHans' PGD loop with a seeded start) from a uniform random
start, the last iterate. (Attacks on the routed model run the same core through
`nfi_tf.attacks.pgd_judged`, judged at every iterate.)
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from nfi_tf.attacks import pgd_core
from nfi_tf.config import AttackConfig


def make_pgd_attack(model_fn: Callable[[tf.Tensor], tf.Tensor], loss_fn: Callable[..., tf.Tensor],
                    attack: AttackConfig) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """A compiled `(x, y, seed[2]) -> x'`: untargeted L-inf PGD from a uniform random start."""

    @tf.function(reduce_retracing=True)
    def run(x, y, seed):
        return pgd_core.pgd(model_fn, x, y, loss_fn, attack, seed, "uniform")

    return run
