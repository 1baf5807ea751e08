"""Each loss against a hand computation on fixed logits (numpy), both variants."""

import numpy as np
import pytest
import tensorflow as tf

from nfi_tf import losses
from nfi_tf.config import LossConfig

CLEAN = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], np.float32)
ADV = np.array([[1.0, 1.5, -0.5], [0.3, -0.2, 0.1]], np.float32)
PART = np.array([[0.5, 0.0, 0.2], [1.0, 0.1, -0.3]], np.float32)
LABELS = np.array([0, 2])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _ce(z, y):
    return float(np.mean(-np.log(_softmax(z)[np.arange(len(y)), y])))


def _kl(p_logits, q_logits):
    p, q = _softmax(p_logits), _softmax(q_logits)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), -1)))


def test_trades_loss_by_hand():
    total, ce, kl = losses.tradeoff_loss(CLEAN, ADV, LABELS, beta=6.0)
    assert ce.numpy() == pytest.approx(_ce(CLEAN, LABELS), rel=1e-5)
    assert kl.numpy() == pytest.approx(_kl(CLEAN, ADV), rel=1e-5)
    assert total.numpy() == pytest.approx(_ce(CLEAN, LABELS) + 6.0 * _kl(CLEAN, ADV), rel=1e-5)


def test_benign_and_adversarial_head_losses_by_hand():
    assert losses.benign_loss(CLEAN, LABELS).numpy() == pytest.approx(_ce(CLEAN, LABELS), rel=1e-5)
    assert losses.adversarial_head_loss(ADV, LABELS).numpy() == pytest.approx(
        _ce(ADV, LABELS), rel=1e-5)
    literal = losses.adversarial_head_loss(ADV, LABELS, CLEAN, variant="literal_kl")
    assert literal.numpy() == pytest.approx(_kl(CLEAN, ADV), rel=1e-5)


def test_counterfactual_loss_variants_by_hand():
    whole, part = _kl(CLEAN, ADV), _kl(CLEAN, PART)
    rel = losses.counterfactual_loss(CLEAN, ADV, PART, "relative", floor=0.0)
    assert rel.numpy() == pytest.approx(part / (whole + 1e-8), rel=1e-5)
    lit = losses.counterfactual_loss(CLEAN, ADV, PART, "literal")
    assert lit.numpy() == pytest.approx(whole / (part + 1e-8), rel=1e-5)
    floored = losses.counterfactual_loss(CLEAN, ADV, PART, "relative", floor=10.0)
    assert floored.numpy() == pytest.approx(part / (10.0 + 1e-8), rel=1e-5)


def test_relative_counterfactual_denominator_carries_no_gradient():
    clean, adv, part = (tf.Variable(v) for v in (CLEAN, ADV, PART))
    with tf.GradientTape() as tape:
        loss = losses.counterfactual_loss(clean, adv, part, "relative", floor=0.0)
    g_adv, g_part = tape.gradient(loss, [adv, part])
    assert g_adv is None  # x' of the whole only enters through the stop-gradient denominator
    assert np.abs(g_part.numpy()).sum() > 0
    with tf.GradientTape() as tape:
        loss = losses.counterfactual_loss(clean, adv, part, "literal")
    assert np.abs(tape.gradient(loss, adv).numpy()).sum() > 0


def test_nfi_loss_is_the_weighted_sum():
    clean = {"tradeoff": CLEAN, "benign": PART, "adversarial": ADV}
    adv = {"tradeoff": ADV, "adversarial": PART, "robust_part": PART}
    cfg = LossConfig(beta=2.0, tradeoff_weight=1.0, benign_weight=0.5, adversarial_weight=2.0,
                     counterfactual_weight=3.0, counterfactual_floor=0.0)
    terms = losses.nfi_loss(clean, adv, LABELS, cfg)
    lt = _ce(CLEAN, LABELS) + 2.0 * _kl(CLEAN, ADV)
    lb, la = _ce(PART, LABELS), _ce(PART, LABELS)
    lcf = _kl(CLEAN, PART) / (_kl(CLEAN, ADV) + 1e-8)
    assert terms["loss"].numpy() == pytest.approx(lt + 0.5 * lb + 2.0 * la + 3.0 * lcf, rel=1e-5)
    for name in ("loss_tradeoff", "loss_benign", "loss_adversarial", "loss_counterfactual"):
        assert np.isfinite(terms[name].numpy())


def test_unknown_variants_raise():
    with pytest.raises(ValueError, match="adversarial_loss"):
        losses.adversarial_head_loss(ADV, LABELS, variant="x")
    with pytest.raises(ValueError, match="counterfactual_loss"):
        losses.counterfactual_loss(CLEAN, ADV, PART, variant="x")
