"""Each loss against a hand computation on fixed logits (numpy), every variant; the trainer's
running counterfactual denominator on real MNIST steps."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_mnist_config

from nfi_tf import data, losses
from nfi_tf.config import LossConfig
from nfi_tf.errors import NfiError
from nfi_tf.models import build_classifier
from nfi_tf.training import AdversarialTrainer, configure_runtime, make_optimizer, train_and_evaluate

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


def test_trades_baseline_loss_carries_its_weight():
    # The loss-weight control of the ablations is TRADES with tradeoff_weight = 3.1; a TRADES
    # loss that ignored the weight made that control a copy of plain TRADES.
    clean, adv = {"tradeoff": CLEAN}, {"tradeoff": ADV}
    one = losses.trades_loss(clean, adv, LABELS, LossConfig(beta=6.0))
    heavy = losses.trades_loss(clean, adv, LABELS, LossConfig(beta=6.0, tradeoff_weight=3.1))
    expected = _ce(CLEAN, LABELS) + 6.0 * _kl(CLEAN, ADV)
    assert one["loss"].numpy() == pytest.approx(expected, rel=1e-5)
    assert heavy["loss"].numpy() == pytest.approx(3.1 * expected, rel=1e-5)
    assert heavy["loss_tradeoff"].numpy() == pytest.approx(expected, rel=1e-5)


def test_benign_and_adversarial_head_losses_by_hand():
    assert losses.benign_loss(CLEAN, LABELS).numpy() == pytest.approx(_ce(CLEAN, LABELS), rel=1e-5)
    assert losses.adversarial_head_loss(ADV, LABELS).numpy() == pytest.approx(
        _ce(ADV, LABELS), rel=1e-5)
    literal = losses.adversarial_head_loss(ADV, LABELS, CLEAN, variant="literal_kl")
    assert literal.numpy() == pytest.approx(_kl(CLEAN, ADV), rel=1e-5)


def test_counterfactual_loss_variants_by_hand():
    whole, part = _kl(CLEAN, ADV), _kl(CLEAN, PART)
    bare = losses.counterfactual_loss(CLEAN, ADV, PART, "floored", floor=0.0)
    assert bare.numpy() == pytest.approx(part / (whole + 1e-8), rel=1e-5)
    # "relative" is the floored form's old name: old config.json files keep their meaning.
    rel = losses.counterfactual_loss(CLEAN, ADV, PART, "relative", floor=0.0)
    assert rel.numpy() == pytest.approx(bare.numpy(), rel=1e-7)
    lit = losses.counterfactual_loss(CLEAN, ADV, PART, "literal")
    assert lit.numpy() == pytest.approx(whole / (part + 1e-8), rel=1e-5)
    floored, denominator = losses.counterfactual_terms(CLEAN, ADV, PART, "floored", floor=10.0)
    assert floored.numpy() == pytest.approx(part / (10.0 + 1e-8), rel=1e-5)
    assert denominator.numpy() == pytest.approx(10.0, rel=1e-6)


def test_log_ratio_by_hand():
    whole, part = _kl(CLEAN, ADV), _kl(CLEAN, PART)
    loss, denominator = losses.counterfactual_terms(CLEAN, ADV, PART, "log_ratio")
    assert loss.numpy() == pytest.approx(np.log(part + 1e-8) - np.log(whole + 1e-8), rel=1e-5)
    assert denominator.numpy() == pytest.approx(whole, rel=1e-5)


def test_running_form_divides_by_the_running_mean():
    part = _kl(CLEAN, PART)
    loss, denominator = losses.counterfactual_terms(CLEAN, ADV, PART, "running", running=0.05)
    assert loss.numpy() == pytest.approx(part / (0.05 + 1e-8), rel=1e-5)
    assert denominator.numpy() == pytest.approx(0.05, rel=1e-5)
    # Without a running mean (a pure call, outside the trainer): this batch's whole KL.
    alone = losses.counterfactual_loss(CLEAN, ADV, PART, "running")
    assert alone.numpy() == pytest.approx(part / (_kl(CLEAN, ADV) + 1e-8), rel=1e-5)


def _cf_and_part_gradient(adv_logits, variant, **kw):
    part = tf.Variable(PART)
    with tf.GradientTape() as tape:
        loss = losses.counterfactual_loss(CLEAN, adv_logits, part, variant, **kw)
    return float(loss), tape.gradient(loss, part).numpy()


# Two attacks that move the whole model by different amounts, both under one nat, as every step of
# the MNIST and CIFAR-10 runs did (max 0.31 and 0.033): only the whole's KL differs between them.
NEAR = 0.5 * (CLEAN + ADV)


def test_floored_form_at_floor_one_ignores_the_whole_models_kl():
    # The old default's defect, pinned: below one nat the whole's movement never reaches the loss.
    assert _kl(CLEAN, NEAR) < _kl(CLEAN, ADV) < 1
    far, g_far = _cf_and_part_gradient(ADV, "floored", floor=1.0)
    near, g_near = _cf_and_part_gradient(NEAR, "floored", floor=1.0)
    assert far == pytest.approx(near, rel=1e-7) and np.allclose(g_far, g_near)


def test_active_forms_act_on_the_whole_models_kl():
    whole_far, whole_near = _kl(CLEAN, ADV), _kl(CLEAN, NEAR)
    # running (a pure call: the batch's whole KL is the mean) and the bare ratio: the gradient on
    # the robust part scales exactly with 1 / whole.
    for variant, kw in (("running", {}), ("floored", {"floor": 0.0})):
        far, g_far = _cf_and_part_gradient(ADV, variant, **kw)
        near, g_near = _cf_and_part_gradient(NEAR, variant, **kw)
        assert near / far == pytest.approx(whole_far / whole_near, rel=1e-4), variant
        np.testing.assert_allclose(g_near, g_far * whole_far / whole_near, rtol=1e-4)
    # In the trainer the running mean, not the batch, sets that scale.
    _, g_small = _cf_and_part_gradient(ADV, "running", running=0.01)
    _, g_large = _cf_and_part_gradient(ADV, "running", running=0.1)
    np.testing.assert_allclose(g_small, 10 * g_large, rtol=1e-4)
    # log_ratio: the whole shifts the value by log(whole_far / whole_near); its gradient is
    # grad(part) / part, the same for both (the whole is stop-gradient and additive in log space).
    far, g_far = _cf_and_part_gradient(ADV, "log_ratio")
    near, g_near = _cf_and_part_gradient(NEAR, "log_ratio")
    assert near - far == pytest.approx(np.log(whole_far / whole_near), rel=1e-4)
    np.testing.assert_allclose(g_near, g_far, rtol=1e-5)


def test_the_default_form_acts_on_the_whole_models_kl():
    # Fails for the old default (floored at floor 1): its gradient ignored the whole's KL.
    lo = LossConfig()
    after_warmup = losses.warmup_fraction(lo.counterfactual_warmup_steps, lo.counterfactual_warmup_steps)
    kw = {"floor": lo.counterfactual_floor, "warmup": after_warmup}
    _, g_small = _cf_and_part_gradient(ADV, lo.counterfactual_loss, running=0.01, **kw)
    _, g_large = _cf_and_part_gradient(ADV, lo.counterfactual_loss, running=0.1, **kw)
    np.testing.assert_allclose(g_small, 10 * g_large, rtol=1e-4)
    assert lo.counterfactual_warmup_steps > 0 and 0 < lo.counterfactual_weight < 1


def test_running_mean_update_rule():
    # The first batch (count 0) initializes the mean with its own value, whatever came before.
    assert losses.running_mean_update(0.0, 0.3, 0.99, 0).numpy() == pytest.approx(0.3)
    assert losses.running_mean_update(7.0, 0.3, 0.99, 0).numpy() == pytest.approx(0.3)
    # Later: decay * previous + (1 - decay) * value.
    assert losses.running_mean_update(0.2, 0.1, 0.9, 3).numpy() == pytest.approx(0.19, rel=1e-6)
    m = 0.0
    for count, v in enumerate([0.4, 0.0, 0.0]):
        m = losses.running_mean_update(m, v, 0.5, count)
    assert m.numpy() == pytest.approx(0.1, rel=1e-6)  # 0.4, then 0.2, then 0.1


def test_warmup_fraction_and_interpolation():
    assert [float(losses.warmup_fraction(s, 10)) for s in (0, 5, 10, 25)] == [0.0, 0.5, 1.0, 1.0]
    assert float(losses.warmup_fraction(3, 0)) == 1.0  # 0 steps: no warm-up
    whole, part = _kl(CLEAN, ADV), _kl(CLEAN, PART)
    for variant in ("floored", "running", "log_ratio", "literal"):
        plain = losses.counterfactual_loss(CLEAN, ADV, PART, variant, floor=1.0, running=0.05,
                                           warmup=0.0)
        assert plain.numpy() == pytest.approx(part, rel=1e-5), variant  # a = 0: the plain KL
    # Ratio forms blend the denominator from 1 to theirs: 1 / (0.75 + 0.25 * 0.05).
    loss, denominator = losses.counterfactual_terms(CLEAN, ADV, PART, "running", running=0.05,
                                                    warmup=0.25)
    assert denominator.numpy() == pytest.approx(0.75 + 0.25 * (0.05 + 1e-8), rel=1e-6)
    assert loss.numpy() == pytest.approx(part / (0.75 + 0.25 * 0.05), rel=1e-5)
    # log_ratio (no denominator to blend) blends the loss.
    log_ratio = np.log(part + 1e-8) - np.log(whole + 1e-8)
    blended = losses.counterfactual_loss(CLEAN, ADV, PART, "log_ratio", warmup=0.25)
    assert blended.numpy() == pytest.approx(0.75 * part + 0.25 * log_ratio, rel=1e-5)


def test_relative_counterfactual_denominator_carries_no_gradient():
    clean, adv, part = (tf.Variable(v) for v in (CLEAN, ADV, PART))
    with tf.GradientTape() as tape:
        loss = losses.counterfactual_loss(clean, adv, part, "floored", floor=0.0)
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
                     counterfactual_weight=3.0, counterfactual_loss="floored",
                     counterfactual_floor=0.0)
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
    with pytest.raises(NfiError, match="Received: counterfactual_loss='x'"):
        losses.counterfactual_loss(CLEAN, ADV, PART, variant="x")


def _running_config(**loss):
    return tiny_mnist_config("nfi", data={"train_examples": 128, "eval_examples": 32},
                             attack={"num_steps": 2},
                             eval_attack={"num_steps": 1, "step_size": 0.3},
                             train={"epochs": 2, "deterministic": True},
                             loss={"counterfactual_loss": "running",
                                   "counterfactual_warmup_steps": 0, **loss})


def test_trainer_keeps_the_running_mean_of_the_whole_models_kl():
    # No warm-up: from the first step the loss divides by the running mean itself.
    config = _running_config(counterfactual_ema_decay=0.5, counterfactual_warmup_steps=0)
    configure_runtime(config)
    model = build_classifier(config.model, (28, 28, 1), 10)
    trainer = AdversarialTrainer(model, config)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch=2))
    x, y = data.load_arrays(config.data, "train", 128)
    x = tf.constant(data.uint8_to_float(x))
    step = tf.function(trainer.train_step)
    m1 = {k: float(v) for k, v in step((x[:64], y[:64])).items()}
    # First batch: the mean is that batch's whole KL (loss_robust_kl), and the loss divides by it.
    assert m1["cf_running_kl"] == pytest.approx(m1["loss_robust_kl"], rel=1e-5)
    assert m1["cf_denominator"] == pytest.approx(m1["loss_robust_kl"] + 1e-8, rel=1e-5)
    assert float(trainer.cf_running_kl) == pytest.approx(m1["cf_running_kl"], rel=1e-6)
    m2 = {k: float(v) for k, v in step((x[64:], y[64:])).items()}
    expected = 0.5 * m1["cf_running_kl"] + 0.5 * m2["loss_robust_kl"]
    assert m2["cf_running_kl"] == pytest.approx(expected, rel=1e-5)
    assert float(trainer.cf_running_kl) == pytest.approx(expected, rel=1e-5)
    assert int(trainer.cf_running_count) == 2


@pytest.mark.large  # two training runs
def test_running_denominator_resumes_exactly(tmp_path):
    # Without the running mean in the checkpoint, the resumed run would restart the mean from
    # step 3's batch and end with other weights.
    config = _running_config(counterfactual_ema_decay=0.5)
    train_and_evaluate(config, str(tmp_path / "a"), verbose=0)
    assert train_and_evaluate(config, str(tmp_path / "b"), verbose=0, stop_after_steps=3)["steps"] == 3
    train_and_evaluate(config, str(tmp_path / "b"), verbose=0)
    histories = [json.load(open(tmp_path / d / "history.json")) for d in ("a", "b")]
    assert histories[0][-1]["train"]["cf_running_kl"] > 0
    a, b = (keras.models.load_model(str(tmp_path / d / "model.keras")) for d in ("a", "b"))
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))
