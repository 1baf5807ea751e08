"""The training losses of docs/method.md §2, as pure functions of logits.

Every loss is a batch mean (TRADES' KL is `KLDivLoss(sum) / batch_size`). Equation numbers
refer to the paper.
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.attacks.losses import kl_from_logits
from nfi_tf.config import LossConfig
from nfi_tf.errors import NfiError
from nfi_tf.outputs import ADVERSARIAL, BENIGN, ROBUST_PART, TRADEOFF

CF_EPS = 1e-8  # docs/method.md §2: the counterfactual ratio's denominator offset


def cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits))


def kl_divergence(p_logits, q_logits):
    """Batch mean of KL(softmax(p) || softmax(q)), computed from logits (log-sum-exp stable)."""
    return tf.reduce_mean(kl_from_logits(p_logits, q_logits))


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


# docs/method.md §2: every reading of eq. 4–5; "relative" is the floored form's old name, kept so
# config.json files written before the rename still load.
COUNTERFACTUAL_ALIASES = {"relative": "floored"}


def warmup_fraction(step, warmup_steps: int):
    """a = min(step / N, 1): 0 at the first step, 1 from step N on; N = 0 means no warm-up."""
    if warmup_steps <= 0:
        return tf.constant(1.0)
    return tf.minimum(tf.cast(step, tf.float32) / float(warmup_steps), 1.0)


def running_mean_update(previous, value, decay: float, count):
    """The running denominator after one more batch: `value` itself at the first batch (count 0),
    else the exponential moving average decay * previous + (1 - decay) * value."""
    value = tf.cast(value, tf.float32)
    ema = decay * tf.cast(previous, tf.float32) + (1.0 - decay) * value
    return tf.where(tf.equal(count, 0), value, ema)


def counterfactual_terms(tradeoff_clean, tradeoff_adv, robust_part_adv, variant="floored",
                         floor=0.0, running=None, warmup=1.0):
    """Eq. 4–5, the counterfactual baseline; `robust_part_adv` = h_t(m * f(x')).

    With part = KL(p_t(x) || p_cf(x')) and whole = KL(p_t(x) || p_t(x')), sg = stop-gradient:
    "floored": part / (max(sg(whole), floor) + 1e-8). On MNIST/CIFAR-10 the whole never moves by
      one nat, so with floor 1 this is the plain part KL: the ratio never acts.
    "running": part / (sg(running mean of whole) + 1e-8): the denominator is an exponential
      moving average over training steps (`running`, kept by the trainer), so the ratio's
      scale follows training instead of a constant; without `running`, this batch's whole.
    "log_ratio": log(part + 1e-8) - log(sg(whole) + 1e-8): scale free; its gradient is
      grad(part) / (part + 1e-8), and the whole enters its value only.
    "literal": whole / (part + 1e-8), eq. 5 as printed, gradients through both.
    `warmup` (a in [0, 1], see `warmup_fraction`) goes from the plain part KL (a = 0) to the
    form (a = 1): the ratio forms blend their denominator, (1 - a) * 1 + a * denominator, so the
    1 / denominator scale grows only as the warm-up ends; log_ratio and literal, which have no
    such denominator, blend the loss, (1 - a) * part + a * form.

    Returns (loss, denominator): the denominator the loss actually divided by (for log_ratio,
    the one whose log it subtracts), stop-gradient, for the training metrics.
    """
    variant = COUNTERFACTUAL_ALIASES.get(variant, variant)
    whole = kl_divergence(tradeoff_clean, tradeoff_adv)
    part = kl_divergence(tradeoff_clean, robust_part_adv)
    warmup = tf.cast(warmup, part.dtype)
    if variant in ("floored", "running"):
        if variant == "floored":
            denominator = tf.maximum(tf.stop_gradient(whole), floor) + CF_EPS
        else:
            source = whole if running is None else tf.cast(running, part.dtype)
            denominator = tf.stop_gradient(source) + CF_EPS
        denominator = (1.0 - warmup) + warmup * denominator
        return part / denominator, denominator
    if variant == "log_ratio":
        denominator = tf.stop_gradient(whole) + CF_EPS
        form = tf.math.log(part + CF_EPS) - tf.math.log(denominator)
    elif variant == "literal":
        denominator = tf.stop_gradient(part) + CF_EPS
        form = whole / (part + CF_EPS)
    else:
        raise NfiError("counterfactual_loss must be one of 'floored' ('relative'), 'running', "
                         f"'log_ratio', 'literal'. Received: counterfactual_loss={variant!r}")
    return (1.0 - warmup) * part + warmup * form, denominator


def counterfactual_loss(tradeoff_clean, tradeoff_adv, robust_part_adv, variant="floored",
                        floor=0.0, running=None, warmup=1.0):
    """The loss of `counterfactual_terms` alone."""
    return counterfactual_terms(tradeoff_clean, tradeoff_adv, robust_part_adv, variant, floor,
                                running, warmup)[0]


def nfi_loss(clean: dict, adv: dict, labels, cfg: LossConfig, running=None,
             warmup=1.0) -> dict[str, tf.Tensor]:
    """Eq. 15: the weighted sum of the four terms. `clean`/`adv`: classifier outputs on x, x'.

    `running` and `warmup`: the trainer's state for the counterfactual term (see
    `counterfactual_terms`). Returns every term, the counterfactual denominator actually used
    (`cf_denominator`) and their weighted `loss`.
    """
    lt, ce, kl = tradeoff_loss(clean[TRADEOFF], adv[TRADEOFF], labels, cfg.beta)
    lb = benign_loss(clean[BENIGN], labels)
    la = adversarial_head_loss(adv[ADVERSARIAL], labels, clean[ADVERSARIAL], cfg.adversarial_loss)
    lcf, denominator = counterfactual_terms(clean[TRADEOFF], adv[TRADEOFF], adv[ROBUST_PART],
                                            cfg.counterfactual_loss, cfg.counterfactual_floor,
                                            running, warmup)
    total = (cfg.tradeoff_weight * lt + cfg.benign_weight * lb + cfg.adversarial_weight * la
             + cfg.counterfactual_weight * lcf)
    return {"loss": total, "loss_tradeoff": lt, "loss_natural": ce, "loss_robust_kl": kl,
            "loss_benign": lb, "loss_adversarial": la, "loss_counterfactual": lcf,
            "cf_denominator": denominator}


def trades_loss(clean: dict, adv: dict, labels, cfg: LossConfig) -> dict[str, tf.Tensor]:
    """The TRADES baseline: the trade-off loss alone, times --tradeoff_weight (1 by default;
    the reproduction's loss-weight control sets it to nfi's total loss weight)."""
    lt, ce, kl = tradeoff_loss(clean[TRADEOFF], adv[TRADEOFF], labels, cfg.beta)
    return {"loss": cfg.tradeoff_weight * lt, "loss_tradeoff": lt, "loss_natural": ce,
            "loss_robust_kl": kl}
