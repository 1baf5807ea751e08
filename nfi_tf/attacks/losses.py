"""Attack objectives: `loss(labels, logits) -> [B]`, the per-example loss an attack maximizes.

All take `labels` and `logits` as keywords, CleverHans' calling convention, so the same
functions serve CleverHans' PGD (training) and the native attacks (evaluation).
"""

from __future__ import annotations

import tensorflow as tf

# AutoAttack's constant in the DLR denominators (keeps them finite when logits tie).
DLR_EPS = 1e-12


def _onehot(labels, logits):
    return tf.one_hot(tf.cast(labels, tf.int32), tf.shape(logits)[-1], dtype=logits.dtype)


def kl_from_logits(p_logits, q_logits):
    """Per-example KL(softmax(p) || softmax(q)), [B], from logits (log-sum-exp stable).

    The one KL of the package: the training losses take its batch mean."""
    p_log = tf.nn.log_softmax(p_logits)
    return tf.reduce_sum(tf.exp(p_log) * (p_log - tf.nn.log_softmax(q_logits)), axis=-1)


def kl_loss_fn(labels, logits):
    """TRADES' attack objective KL(softmax(labels) || softmax(logits)); `labels` = clean logits."""
    return kl_from_logits(labels, logits)


def ce_loss_fn(labels, logits):
    """Cross-entropy of the true labels (untargeted PGD as TRADES evaluates)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                          logits=logits)


def margin_loss_fn(labels, logits):
    """max_{j != y} z_j - z_y: > 0 exactly where the output is wrong."""
    onehot = _onehot(labels, logits)
    correct = tf.reduce_sum(onehot * logits, axis=-1)
    other = tf.reduce_max(logits - 1e9 * onehot, axis=-1)
    return other - correct


def agreement_loss_fn(labels, logits, num_scores: int, cap: float = 10.0):
    """Sum over `num_scores` score vectors, concatenated in `logits` ([B, num_scores * C]), of
    min(z_t - max_{j != t} z_j, cap) with t = `labels`: grows as every score moves onto class t
    (> 0 for a score exactly where t wins); the cap stops a score already far past its boundary
    from dominating. Used to steer the routing switch (all deciding scores on one class)."""
    chunks = tf.split(logits, num_scores, axis=-1)
    return tf.add_n([tf.minimum(-margin_loss_fn(labels=labels, logits=c), cap) for c in chunks])


def cw_loss_fn(labels, logits, confidence: float = 50.0):
    """The CW-Linf margin: max_{j != y} z_j - z_y, capped at `confidence` (as TRADES' CW eval)."""
    return tf.minimum(margin_loss_fn(labels=labels, logits=logits), confidence)


def dlr_loss_fn(labels, logits):
    """AutoAttack's DLR: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12), pi = sorted desc."""
    top = tf.sort(logits, axis=-1, direction="DESCENDING")
    return margin_loss_fn(labels=labels, logits=logits) / (top[:, 0] - top[:, 2] + DLR_EPS)


def targeted_dlr_loss_fn(labels, logits, targets):
    """AutoAttack's targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)."""
    top = tf.sort(logits, axis=-1, direction="DESCENDING")
    z_y = tf.reduce_sum(_onehot(labels, logits) * logits, axis=-1)
    z_t = tf.reduce_sum(_onehot(targets, logits) * logits, axis=-1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + DLR_EPS)
