"""The training losses of docs/method.md §2, as pure functions of logits.

Every loss is a batch mean (TRADES' KL is `KLDivLoss(sum) / batch_size`). Equation numbers
refer to the paper.
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.config import LossConfig

CF_EPS = 1e-8  # docs/method.md §2: the counterfactual ratio's denominator offset


def cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits))


def kl_divergence(p_logits, q_logits):
    """Batch mean of KL(softmax(p) || softmax(q)), computed from logits (log-sum-exp stable)."""
    p_log = tf.nn.log_softmax(p_logits)
    q_log = tf.nn.log_softmax(q_logits)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(p_log) * (p_log - q_log), axis=-1))


def tradeoff_loss(clean_logits, adv_logits, labels, beta):
    """Eq. 7 (TRADES): CE(h_t(x), y) + beta * KL(h_t(x) || h_t(x')). Returns (loss, ce, kl)."""
    ce = cross_entropy(labels, clean_logits)
    kl = kl_divergence(clean_logits, adv_logits)
    return ce + beta * kl, ce, kl


def benign_loss(benign_clean_logits, labels):
    """Eq. 9: CE(h_b(x), y)."""
    return cross_entropy(labels, benign_clean_logits)


def adversarial_head_loss(adv_head_on_adv, labels, adv_head_on_clean=None, variant="ce"):
    """Eq. 11. Default CE(h_a(x'), y); "literal_kl": KL(h_a(x) || h_a(x')), label-free as printed
    (alone it is minimized by any constant output, hence not the default)."""
    if variant == "ce":
        return cross_entropy(labels, adv_head_on_adv)
    if variant == "literal_kl":
        return kl_divergence(adv_head_on_clean, adv_head_on_adv)
    raise ValueError(f"adversarial_loss must be 'ce' or 'literal_kl'. Received: {variant!r}")


def counterfactual_loss(tradeoff_clean, tradeoff_adv, robust_part_adv, variant="relative",
                        floor=0.0):
    """Eq. 5, the counterfactual baseline; `robust_part_adv` = h_t(m * f(x')).

    "relative" (default): KL(p_t(x) || p_cf(x')) / (sg(KL(p_t(x) || p_t(x'))) + 1e-8): the robust
    part alone should move less under attack than the whole (eq. 4), measured against the
    whole's current movement, which is not itself pushed by this term.
    "literal": KL(p_t(x) || p_t(x')) / (KL(p_t(x) || p_cf(x')) + 1e-8), whole over part, as
    printed, gradients through both.
    `floor` bounds the relative form's denominator from below (max(sg(whole), floor) + 1e-8):
    with a near-constant early model the whole barely moves (KL ~ 1e-5) and the bare ratio's
    gradient, scaled by 1/KL, makes SGD diverge.
    """
    whole = kl_divergence(tradeoff_clean, tradeoff_adv)
    part = kl_divergence(tradeoff_clean, robust_part_adv)
    if variant == "relative":
        return part / (tf.maximum(tf.stop_gradient(whole), floor) + CF_EPS)
    if variant == "literal":
        return whole / (part + CF_EPS)
    raise ValueError(f"counterfactual_loss must be 'relative' or 'literal'. Received: {variant!r}")


def nfi_loss(clean: dict, adv: dict, labels, cfg: LossConfig) -> dict[str, tf.Tensor]:
    """Eq. 15: the weighted sum of the four terms. `clean`/`adv`: classifier outputs on x, x'.

    Returns every term and their weighted `loss`.
    """
    lt, ce, kl = tradeoff_loss(clean["tradeoff"], adv["tradeoff"], labels, cfg.beta)
    lb = benign_loss(clean["benign"], labels)
    la = adversarial_head_loss(adv["adversarial"], labels, clean["adversarial"], cfg.adversarial_loss)
    lcf = counterfactual_loss(clean["tradeoff"], adv["tradeoff"], adv["robust_part"],
                              cfg.counterfactual_loss, cfg.counterfactual_floor)
    total = (cfg.tradeoff_weight * lt + cfg.benign_weight * lb + cfg.adversarial_weight * la
             + cfg.counterfactual_weight * lcf)
    return {"loss": total, "loss_tradeoff": lt, "loss_natural": ce, "loss_robust_kl": kl,
            "loss_benign": lb, "loss_adversarial": la, "loss_counterfactual": lcf}


def trades_loss(clean: dict, adv: dict, labels, cfg: LossConfig) -> dict[str, tf.Tensor]:
    """The TRADES baseline: the trade-off loss alone."""
    lt, ce, kl = tradeoff_loss(clean["tradeoff"], adv["tradeoff"], labels, cfg.beta)
    return {"loss": lt, "loss_tradeoff": lt, "loss_natural": ce, "loss_robust_kl": kl}
