"""The per-epoch check during training: clean and PGD accuracy of every output on a test subset.

The PGD here (the one core, `nfi_tf.attacks.pgd_core`) attacks the trade-off head (CE, TRADES'
evaluation settings) and scores every head and the routed model on the same x'. For the routed
model that is a transfer attack, an upper bound on its robustness; the adaptive evaluation is
`python -m nfi_tf.evaluate`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nfi_tf import outputs
from nfi_tf.attacks import losses, pgd_core
from nfi_tf.attacks.seeds import stateless_seed
from nfi_tf.config import AttackConfig


def make_eval_step(classifier, attack: AttackConfig, seed: int):
    """A compiled step returning per-output counts of correct predictions on x and on x'."""

    def tradeoff(z):
        return classifier(z, training=False)[outputs.TRADEOFF]

    @tf.function(reduce_retracing=True)
    def step(x, y, batch_index):
        # The start of batch i is keyed by (seed, i): the same images every epoch.
        x_adv = pgd_core.pgd(tradeoff, x, y, losses.ce_loss_fn, attack,
                             stateless_seed(seed, batch_index), "uniform")
        clean, adv = classifier(x, training=False), classifier(x_adv, training=False)
        y = tf.cast(y, tf.int64)
        counts = {}
        for name in outputs.SCORED_NFI:
            if name in clean:
                counts[f"clean_{name}"] = tf.reduce_sum(
                    tf.cast(tf.equal(tf.argmax(clean[name], -1), y), tf.int64))
                counts[f"pgd_{name}"] = tf.reduce_sum(
                    tf.cast(tf.equal(tf.argmax(adv[name], -1), y), tf.int64))
        return counts

    return step


def evaluate(step, dataset: tf.data.Dataset) -> dict:
    """Accuracies in [0, 1] (`clean_<output>`, `pgd_<output>`) of a `make_eval_step` step."""
    totals: dict[str, int] = {}
    n = 0
    for i, (x, y) in enumerate(dataset):
        for k, v in step(x, y, tf.constant(i, tf.int64)).items():
            totals[k] = totals.get(k, 0) + int(v)
        n += int(np.shape(y)[0])
    return {k: v / max(n, 1) for k, v in sorted(totals.items())} | {"examples": n}
