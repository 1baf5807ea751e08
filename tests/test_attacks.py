"""The one PGD (CleverHans inside): the eps ball, [0, 1], its objective, its seeding."""

import numpy as np
import pytest
import tensorflow as tf

from nfi_tf import attacks
from nfi_tf.config import AttackConfig, make_config
from nfi_tf.models import build_classifier


@pytest.fixture(scope="module")
def model_and_images(mnist_test_arrays):
    import keras

    keras.utils.set_random_seed(0)
    model = build_classifier(make_config("mnist").model, (28, 28, 1), 10)
    x, y = mnist_test_arrays
    return model, tf.constant(x[:64]), tf.constant(y[:64])


def _tradeoff(model):
    return lambda z: model(z, training=False)["tradeoff"]


@pytest.mark.parametrize("start", ["normal", "uniform", "none"])
def test_pgd_stays_in_eps_ball_and_pixel_range(model_and_images, start):
    model, x, y = model_and_images
    attack = AttackConfig(epsilon=0.3, step_size=0.1, num_steps=5)
    fn = _tradeoff(model)
    x_adv = attacks.pgd(fn, x, y, attacks.ce_loss_fn, attack, tf.constant([0, 1]), start).numpy()
    assert np.max(np.abs(x_adv - x.numpy())) <= 0.3 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.max(np.abs(x_adv - x.numpy())) > 0.29  # it did move to the boundary


def test_pgd_raises_the_trades_kl_it_maximizes(model_and_images):
    model, x, _ = model_and_images
    fn = _tradeoff(model)
    clean = fn(x)
    attack = AttackConfig(epsilon=0.3, step_size=0.05, num_steps=10)
    x_adv = attacks.pgd(fn, x, clean, attacks.kl_loss_fn, attack, tf.constant([3, 4]), "normal")
    x_rand = tf.clip_by_value(x + 0.3 * tf.sign(tf.random.stateless_normal(x.shape, [5, 6])), 0, 1)
    kl_adv = float(tf.reduce_mean(attacks.kl_loss_fn(clean, fn(x_adv))))
    kl_rand = float(tf.reduce_mean(attacks.kl_loss_fn(clean, fn(x_rand))))
    kl_start = float(tf.reduce_mean(attacks.kl_loss_fn(clean, fn(x + 0.001))))
    assert kl_adv > 5 * kl_start
    assert kl_adv > kl_rand  # beats a random corner of the same ball


def test_pgd_is_a_function_of_its_seed(model_and_images):
    model, x, y = model_and_images
    attack = AttackConfig(epsilon=0.3, step_size=0.1, num_steps=2)
    fn = _tradeoff(model)
    a = attacks.pgd(fn, x, y, attacks.ce_loss_fn, attack, tf.constant([7, 7]), "uniform").numpy()
    b = attacks.pgd(fn, x, y, attacks.ce_loss_fn, attack, tf.constant([7, 7]), "uniform").numpy()
    c = attacks.pgd(fn, x, y, attacks.ce_loss_fn, attack, tf.constant([7, 8]), "uniform").numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pgd_inside_tf_function_matches_eager(model_and_images):
    model, x, y = model_and_images
    attack = AttackConfig(epsilon=0.3, step_size=0.1, num_steps=3)
    fn = _tradeoff(model)
    seed = tf.constant([1, 2])
    eager = attacks.pgd(fn, x, y, attacks.ce_loss_fn, attack, seed, "normal").numpy()
    graph = tf.function(lambda a, b: attacks.pgd(fn, a, b, attacks.ce_loss_fn, attack, seed,
                                                 "normal"))(x, y).numpy()
    np.testing.assert_allclose(eager, graph, atol=1e-6)


def test_cw_margin_by_hand():
    logits = tf.constant([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    labels = tf.constant([0, 2])
    np.testing.assert_allclose(attacks.cw_loss_fn(labels, logits).numpy(), [2 - 3, 5 - 1])
    np.testing.assert_allclose(attacks.cw_loss_fn(labels, logits, confidence=1.0).numpy(), [-1, 1])


def test_kl_objective_is_zero_at_the_clean_point():
    logits = tf.constant([[1.0, 2.0, 0.5]])
    assert float(attacks.kl_loss_fn(logits, logits)[0]) == pytest.approx(0.0, abs=1e-7)


def test_unknown_random_start_is_rejected(model_and_images):
    model, x, y = model_and_images
    with pytest.raises(ValueError, match="random_start"):
        attacks.pgd(_tradeoff(model), x, y, attacks.ce_loss_fn, AttackConfig(), tf.constant([0, 0]),
                    "gaussian")
