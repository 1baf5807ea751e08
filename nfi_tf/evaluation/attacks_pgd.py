"""PGD-CE and CW-Linf against any output of the classifier, all through `nfi_tf.attacks.pgd`.

An output ("target") is a row of the table: a head (`tradeoff`, `benign`, `adversarial`), a
part alone (`robust_part`, `nonrobust_part`) or the routed model, whose switch is given a
mode (see switch.py): straight-through for the standard attacks, hard for the naive PGD,
soft for the temperature relaxation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

from nfi_tf import attacks
from nfi_tf.config import AttackConfig
from nfi_tf.evaluation import switch

PGD_FAMILIES = ("pgd", "cw", "pgd_naive", "pgd_soft")


def logits_fn(classifier, target: str, switch_mode: str = "straight_through",
              temperature: float = 1.0) -> Callable[[tf.Tensor], tf.Tensor]:
    """images -> the logits of `target` (the model in inference mode)."""
    if target == "routed":
        return lambda z: switch.routed_logits(classifier(z, training=False), switch_mode, temperature)
    return lambda z: classifier(z, training=False)[target]


def loss_for(family: str, cw_confidence: float = 50.0) -> Callable[..., tf.Tensor]:
    if family == "cw":
        return functools.partial(attacks.cw_loss_fn, confidence=cw_confidence)
    if family in ("pgd", "pgd_naive", "pgd_soft"):
        return attacks.ce_loss_fn
    raise ValueError(f"family must be one of {PGD_FAMILIES}. Received: family={family!r}")


def make_pgd_attack(model_fn: Callable[[tf.Tensor], tf.Tensor], loss_fn: Callable[..., tf.Tensor],
                    attack: AttackConfig) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """A compiled `(x, y, seed[2]) -> x'`: untargeted L-inf PGD from a uniform random start."""

    @tf.function(reduce_retracing=True)
    def run(x, y, seed):
        return attacks.pgd(model_fn, x, y, loss_fn, attack, seed, "uniform")

    return run
