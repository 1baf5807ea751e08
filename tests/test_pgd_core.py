"""The one PGD core: equal to CleverHans' PGD on the same start, its keep rules, its seed scheme,
and the same core under training, the per-epoch check and the evaluation."""

import importlib
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
from helpers import tiny_mnist_config

from nfi_tf.attacks import losses, pgd_core, seeds
from nfi_tf.attacks.base import Target
from nfi_tf.attacks.pgd_judged import JudgedPGD
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.config import AttackConfig, make_config
from nfi_tf.evaluation.suite.pgd import PGDAttack
from nfi_tf.models import build_classifier
from nfi_tf.training import AdversarialTrainer, epoch_eval, make_optimizer

_CH_PGD = importlib.import_module("cleverhans.tf2.attacks.projected_gradient_descent")


@pytest.fixture(scope="module")
def model_and_images(mnist_test_arrays):
    keras.utils.set_random_seed(0)
    model = build_classifier(make_config("mnist").model, (28, 28, 1), 10)
    x, y = mnist_test_arrays
    return model, tf.constant(x[:32]), tf.constant(y[:32])


def _tradeoff(model):
    return lambda z: model(z, training=False)["tradeoff"]


def _cleverhans(fn, x, y, loss_fn, norm, eps, step, steps, noise=None):
    """CleverHans' own projected_gradient_descent; `noise` replaces its random draw (here, in the
    test only: library code never patches CleverHans)."""
    kwargs = dict(eps=eps, eps_iter=step, nb_iter=steps, norm=norm, loss_fn=loss_fn, clip_min=0.0,
                  clip_max=1.0, y=y, sanity_checks=False)
    if noise is None:
        return projected_gradient_descent(fn, x, rand_init=False, **kwargs).numpy()
    with mock.patch.object(_CH_PGD, "random_lp_vector", lambda *a, **k: noise):
        return projected_gradient_descent(fn, x, rand_init=True, **kwargs).numpy()


@pytest.mark.parametrize("start", ["none", "uniform", "normal"])
def test_core_equals_cleverhans_pgd_on_the_same_start_linf(model_and_images, start):
    model, x, y = model_and_images
    fn, threat = _tradeoff(model), ThreatModel("linf", 0.3, 0.05)
    seed = seeds.stateless_seed(4, "pin")
    noise = None if start == "none" else pgd_core.start_noise(start, tf.shape(x), threat, seed)
    theirs = _cleverhans(fn, x, y, losses.ce_loss_fn, np.inf, 0.3, 0.05, 8, noise)
    core = pgd_core.PGD(threat, 8, "constant", start, "last")
    ours, hit = core(pgd_core.loss_objective(fn, losses.ce_loss_fn, y), x, seed)
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-6)
    assert not hit.numpy().any()  # no judge: nothing is reported fooled
    assert np.abs(theirs - x.numpy()).max() > 0.29  # both walked to the ball's edge


def test_core_equals_cleverhans_pgd_l2_in_a_graph(model_and_images):
    # Both compiled: a graph's gradients differ from eager ones by rounding (about 3e-3 after 6
    # L2 steps here), so like is compared with like.
    model, x, y = model_and_images
    fn, threat = _tradeoff(model), ThreatModel("l2", 2.0, 0.5)
    theirs = tf.function(lambda a, b: projected_gradient_descent(
        fn, a, eps=2.0, eps_iter=0.5, nb_iter=6, norm=2, loss_fn=losses.ce_loss_fn, clip_min=0.0,
        clip_max=1.0, y=b, rand_init=False, sanity_checks=False))(x, y).numpy()
    core = pgd_core.PGD(threat, 6, "constant", "none", "last")
    run = tf.function(lambda a, b: core(pgd_core.loss_objective(fn, losses.ce_loss_fn, b), a,
                                        tf.constant([0, 0], tf.int64))[0])
    ours = run(x, y).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    norms = np.sqrt(((ours - x.numpy()) ** 2).reshape(len(ours), -1).sum(1))
    assert norms.max() <= 2.0 + 1e-4 and norms.min() > 1.0


def _one_pixel(values):
    return tf.constant(np.asarray(values, np.float32).reshape(-1, 1, 1, 1))


def test_keep_last_or_best_iterate_by_hand():
    # Sign steps of 0.04 from 0.5 towards the peak of -|z - 0.63|: 0.54, 0.58, 0.62, 0.66.
    x = _one_pixel([0.5])
    objective = lambda z: -tf.abs(tf.reshape(z, [-1]) - 0.63)
    threat = ThreatModel("linf", 0.3, 0.04)
    last, _ = pgd_core.PGD(threat, 4, "constant", "none", "last")(objective, x, tf.constant([0, 0]))
    best, _ = pgd_core.PGD(threat, 4, "constant", "none", "best")(objective, x, tf.constant([0, 0]))
    np.testing.assert_allclose(last.numpy().ravel(), [0.66], atol=1e-6)
    np.testing.assert_allclose(best.numpy().ravel(), [0.62], atol=1e-6)


def test_a_judge_keeps_the_first_fooling_iterate_else_the_last():
    # Up by 0.04 a step from 0.5 and 0.7; the judge is fooled only in [0.6, 0.65]: the first
    # example crosses it (0.62) and keeps that point, the second never enters it and ends at 1.0.
    x = _one_pixel([0.5, 0.7])
    objective = lambda z: tf.reshape(z, [-1])
    judge = lambda z: tf.stack([tf.zeros([tf.shape(z)[0]]), tf.where(
        tf.logical_and(tf.reshape(z, [-1]) >= 0.6, tf.reshape(z, [-1]) <= 0.65), 1.0, -1.0)], 1)
    core = pgd_core.PGD(ThreatModel("linf", 0.3, 0.04), 10, "constant", "none", "last")
    x_adv, hit = core(objective, x, tf.constant([0, 0]), judge=judge, labels=tf.constant([0, 0]))
    np.testing.assert_allclose(x_adv.numpy().ravel(), [0.62, 1.0], atol=1e-6)
    np.testing.assert_array_equal(hit.numpy(), [True, False])


def test_halving_schedule_steps():
    # Straight up from 0.05 inside a wide ball: 4 x 0.08 + 2 x 0.04 + 2 x 0.02 (constant: 8 x 0.08).
    threat, x, up = ThreatModel("linf", 0.9, 0.08), _one_pixel([0.05]), lambda z: tf.reshape(z, [-1])
    halving = pgd_core.PGD(threat, 8, "halving", "none", "last")
    np.testing.assert_allclose(halving.step_sizes(), [0.08] * 4 + [0.04] * 2 + [0.02] * 2)
    x_adv, _ = halving(up, x, tf.constant([0, 0]))
    np.testing.assert_allclose(x_adv.numpy().ravel(), [0.49], atol=1e-6)
    x_adv, _ = pgd_core.PGD(threat, 8, "constant", "none", "last")(up, x, tf.constant([0, 0]))
    np.testing.assert_allclose(x_adv.numpy().ravel(), [0.69], atol=1e-6)


def test_bad_settings_say_what_was_received():
    with pytest.raises(ValueError, match="Received: random_start='gaussian'"):
        pgd_core.PGD(ThreatModel(), 3, random_start="gaussian")
    with pytest.raises(ValueError, match="Received: keep='first'"):
        pgd_core.PGD(ThreatModel(), 3, keep="first")


# === The seed scheme ===


def test_seed_values_are_those_of_the_helpers_they_replace():
    # Pinned from the old formulas (attacks.base.seed_tensor / numpy_rng, attack_factory.int_seed).
    assert seeds.int_seed(0, "pgd@tradeoff", 0) == 1468762760
    assert seeds.int_seed(3, "route@routed:all_heads", 7) == 835518962
    np.testing.assert_array_equal(seeds.stateless_seed(5, "apgd", 2**40, 3, 1), [5, 1858632686032615731])
    np.testing.assert_array_equal(seeds.stateless_seed(11, "pgd@routed:hard", 0), [11, 2467378476113222])
    np.testing.assert_array_equal(seeds.stateless_seed(7, 123), [7, 123])  # training's (seed, step)
    np.testing.assert_array_equal(seeds.numpy_rng(5, "square").integers(0, 1000, 3), [858, 472, 253])
    from nfi_tf.evaluation import outcomes  # the evaluation keys its batches with this very function

    assert outcomes.int_seed is seeds.int_seed


def test_seed_from_tensors_equals_seed_from_ints():
    # The compiled training step folds the optimizer's step as an int64 tensor; wrap-around
    # included, it gives the key the Python ints give.
    as_ints = seeds.stateless_seed(5, "apgd", 2**40, 3, 1).numpy()
    as_tensors = tf.function(lambda b: seeds.stateless_seed(5, "apgd", b, 3, 1))(
        tf.constant(2**40, tf.int64)).numpy()
    np.testing.assert_array_equal(as_tensors, as_ints)


def test_same_seed_same_start_other_key_other_start():
    x = tf.fill([4, 6, 6, 1], 0.5)
    threat = ThreatModel("linf", 0.3)
    a = pgd_core.start_point(x, "uniform", threat, seeds.stateless_seed(0, "pgd@tradeoff", 1)).numpy()
    b = pgd_core.start_point(x, "uniform", threat, seeds.stateless_seed(0, "pgd@tradeoff", 1)).numpy()
    c = pgd_core.start_point(x, "uniform", threat, seeds.stateless_seed(0, "cw@tradeoff", 1)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    assert np.abs(a - 0.5).max() <= 0.3 + 1e-7 and np.abs(a - 0.5).max() > 0.25
    normal = pgd_core.start_point(x, "normal", threat, seeds.stateless_seed(0, 1)).numpy() - 0.5
    assert 0.0005 < normal.std() < 0.002  # TRADES' start: 0.001 N(0, 1)


def test_replicas_start_where_one_device_would():
    threat, seed = ThreatModel("linf", 0.3), seeds.stateless_seed(9, 2)
    whole = pgd_core.start_noise("uniform", tf.constant([8, 3, 3, 1]), threat, seed).numpy()
    parts = [pgd_core.start_noise("uniform", tf.constant([4, 3, 3, 1]), threat, seed, (r, 2)).numpy()
             for r in range(2)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(parts[0], parts[1])


# === One core under training, the per-epoch check and the evaluation ===


def test_training_epoch_check_and_evaluation_run_the_same_core(model_and_images, monkeypatch):
    model, x, y = model_and_images
    calls = []
    original = pgd_core.PGD.__call__

    def counting(self, objective, *args, **kwargs):
        calls.append((self.random_start, self.keep, kwargs.get("judge") is not None))
        return original(self, objective, *args, **kwargs)

    monkeypatch.setattr(pgd_core.PGD, "__call__", counting)
    fn = _tradeoff(model)
    attack = AttackConfig(epsilon=0.3, step_size=0.05, num_steps=5)
    seed = seeds.stateless_seed(3, 1)
    core_uniform = pgd_core.PGD(ThreatModel("linf", 0.3, 0.05), 5, "constant", "uniform", "last")
    reference = core_uniform(pgd_core.loss_objective(fn, losses.ce_loss_fn, y), x, seed)[0].numpy()
    adv_acc = float(np.mean(np.argmax(fn(reference), -1) == y.numpy()))

    # The evaluation's PGD on one output (its seed: [int seed, 0]), and the per-epoch check with
    # batch index 1.
    evaluation = PGDAttack(attack, ThreatModel("linf", 0.3), losses.ce_loss_fn).run(
        x.numpy(), y.numpy(), 3, Target(fn))
    counts = epoch_eval.make_eval_step(model, attack, 3)(x, y, tf.constant(1, tf.int64))
    eval_reference = core_uniform(pgd_core.loss_objective(fn, losses.ce_loss_fn, y), x,
                                  tf.constant([3, 0], tf.int64))[0].numpy()
    np.testing.assert_array_equal(evaluation, eval_reference)
    assert int(counts["pgd_tradeoff"]) == round(adv_acc * len(y))
    assert adv_acc < float(np.mean(np.argmax(fn(x), -1) == y.numpy()))  # the attack did something

    # Training's inner maximisation: TRADES' KL from TRADES' start, the same core.
    config = tiny_mnist_config("trades", attack={"epsilon": 0.3, "step_size": 0.05, "num_steps": 5})
    trainer = AdversarialTrainer(model, config)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch=10))
    trained = trainer.adversarial_examples(x, seed).numpy()
    core_normal = pgd_core.PGD(ThreatModel("linf", 0.3, 0.05), 5, "constant", "normal", "last")
    expected = core_normal(pgd_core.loss_objective(fn, losses.kl_loss_fn, fn(x)), x, seed)[0].numpy()
    np.testing.assert_array_equal(trained, expected)

    # The evaluation's judged PGD (routed model): the same core, judged, best iterate.
    JudgedPGD(lambda z, yy, aux: losses.ce_loss_fn(yy, fn(z)), fn, ThreatModel("linf", 0.3, 0.05), 3,
              name="k", schedule="constant").run(x.numpy()[:4], y.numpy()[:4], 0)
    # reference, evaluation, epoch check, the evaluation's reference; training, its expected
    # value; the judged PGD.
    assert calls == [("uniform", "last", False)] * 4 + [("normal", "last", False)] * 2 + [
        ("uniform", "best", True)]
