"""Native APGD (Croce & Hein, ICML 2020): its schedule, its halving rule, its losses, the judge
rule, and its strength against ART's AutoProjectedGradientDescent on a trained model."""

import os
import warnings
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from nfi_tf.attacks import losses
from nfi_tf.attacks.apgd import APGD, checkpoints, halving_decision, top_other_classes
from nfi_tf.attacks.base import Target
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.model_io import load_classifier

EPS = 0.3
STEPS = 25
N_IMAGES = 64
LINF = ThreatModel("linf", EPS)


@pytest.fixture(scope="module")
def setup(trained_mnist_dir, mnist_test_arrays):
    model = load_classifier(os.path.join(trained_mnist_dir, "model.keras"))
    x, y = mnist_test_arrays
    tradeoff = tf.function(lambda z: model(z, training=False)["tradeoff"], reduce_retracing=True)
    routed = tf.function(lambda z: model(z, training=False)["routed"], reduce_retracing=True)
    return tradeoff, routed, x[:N_IMAGES], y[:N_IMAGES].astype(np.int32)


@pytest.fixture(scope="module")
def ce_runs(setup):
    """APGD-CE on the tradeoff head, judged by the tradeoff head itself and by the routed output."""
    tradeoff, routed, x, y = setup
    own = APGD(Target(tradeoff), LINF, loss="ce", steps=STEPS).attack(x, y, seed=0)
    by_routed = APGD(Target(tradeoff, judge=routed), LINF, loss="ce", steps=STEPS).attack(x, y, seed=0)
    return own, by_routed


def _wrong(fn, x, y):
    return np.argmax(fn(tf.constant(x)).numpy(), axis=-1) != y


def test_checkpoints_follow_the_autoattack_recurrence():
    # N = 100: windows 22, 19, 16, 13, 10, 7, then never below 6 (p_j of the paper, times 100).
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    # N = 1000: the same fractions, scaled.
    assert checkpoints(1000) == [0, 220, 410, 570, 700, 800, 870, 930, 990]
    # N = 20: first window floor(4.4) = 4, shrinking by 1 (floor(0.6) -> 1) down to 1.
    assert checkpoints(20) == [0, 4, 7, 9] + list(range(10, 21))
    with pytest.raises(ValueError, match="n_iter=0"):
        checkpoints(0)


def test_halving_decision_by_hand():
    # span 16, rho 0.75: condition 1 fires at <= 12 loss increases (the reference code's "<=").
    counts = np.array([5, 12, 13, 13, 13, 16])
    reduced_last = np.array([True, True, False, True, False, False])
    best_changed = np.array([True, True, False, False, True, False])
    decision = halving_decision(counts, 16, reduced_last, best_changed, rho=0.75).numpy()
    # too few increases; boundary; stalled (not halved, best unchanged); halved last time;
    # best improved; stalled although the loss kept rising.
    np.testing.assert_array_equal(decision, [True, True, True, False, False, True])


def test_dlr_losses_by_hand():
    logits = tf.constant([[1.0, 3.0, 2.0, 0.0, -1.0],   # label on top
                          [4.0, 0.0, 1.0, 2.0, 3.0]])   # label third from the bottom
    labels = tf.constant([1, 2])
    # -(z_y - max_{i != y} z_i) / (z_(1) - z_(3)): -(3 - 2) / (3 - 1), -(1 - 4) / (4 - 2).
    np.testing.assert_allclose(losses.dlr_loss_fn(labels=labels, logits=logits).numpy(), [-0.5, 1.5],
                               rtol=1e-6)
    # -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2), targets 0 and 4: -2 / 2.5, 2 / 2.5.
    targeted = losses.targeted_dlr_loss_fn(labels, logits, tf.constant([0, 4])).numpy()
    np.testing.assert_allclose(targeted, [-0.8, 0.8], rtol=1e-6)
    # APGD-T's targets: the best classes other than the label, best first.
    np.testing.assert_array_equal(top_other_classes(logits.numpy(), labels.numpy(), 2), [[2, 0], [0, 4]])


def test_native_apgd_ce_is_at_least_as_strong_as_art(setup, ce_runs):
    """Same eps, eps_step = 2 eps, same steps, same random starts (ART's start is replaced by
    ours so the comparison is of the algorithms, not of the start lottery). Four seeds pooled:
    on 64 images a single seed's count moves by +-2 either way for both attacks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import art.attacks.evasion.auto_projected_gradient_descent as art_apgd
        import keras
        from art.estimators.classification import TensorFlowV2Classifier
    tradeoff, _, x, y = setup
    estimator = TensorFlowV2Classifier(
        model=lambda z, training=False: tradeoff(z), nb_classes=10, input_shape=x.shape[1:],
        clip_values=(0.0, 1.0), loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    art = art_apgd.AutoProjectedGradientDescent(
        estimator, norm=np.inf, eps=EPS, eps_step=2 * EPS, max_iter=STEPS, nb_random_init=1,
        batch_size=N_IMAGES, targeted=False, loss_type="cross_entropy", verbose=False)
    native = APGD(Target(tradeoff), LINF, loss="ce", steps=STEPS)
    clean_right = ~_wrong(tradeoff, x, y)
    native_right = art_right = 0
    for seed in range(4):
        x_native = ce_runs[0].x_adv if seed == 0 else native.run(x, y, seed)
        native_right += int(np.sum(~_wrong(tradeoff, x_native, y)))
        start = (native.start(x, seed).numpy() - x)[clean_right]  # ART starts the clean-correct ones
        with mock.patch.object(art_apgd, "random_sphere", lambda n, m, eps, norm, d=start: d.reshape(n, m)):
            art_right += int(np.sum(~_wrong(tradeoff, art.generate(x, y=y.astype(np.int64)), y)))
    assert native_right < 4 * clean_right.sum() // 3  # the attack does something
    assert native_right <= art_right, (native_right, art_right)


def test_best_iterate_is_never_weaker_than_the_last(setup, ce_runs):
    tradeoff, routed, x, y = setup
    for result, judge in zip(ce_runs, (tradeoff, routed)):
        fooled_best, fooled_last = _wrong(judge, result.x_adv, y), _wrong(judge, result.x_last, y)
        assert np.all(fooled_best[fooled_last])
        # Never fooled: the highest-loss iterate, at least as high as the last one.
        never = ~fooled_best
        ce_best = losses.ce_loss_fn(y[never], tradeoff(result.x_adv[never])).numpy()
        ce_last = losses.ce_loss_fn(y[never], tradeoff(result.x_last[never])).numpy()
        assert np.all(ce_best >= ce_last - 1e-5)
    # The routed output's verdict flickers along the path: the last iterate alone loses examples.
    by_routed = ce_runs[1]
    assert _wrong(routed, by_routed.x_adv, y).sum() > _wrong(routed, by_routed.x_last, y).sum()


def test_success_is_decided_by_the_judge(setup, ce_runs):
    tradeoff, routed, x, y = setup
    own, by_routed = ce_runs
    # judge = logits: APGD's verdict is the argmax verdict on the returned points.
    np.testing.assert_array_equal(own.fooled, _wrong(tradeoff, own.x_adv, y))
    assert own.fooled.sum() > N_IMAGES // 2
    # judge = routed output: every point counted as fooled fools the routed output...
    routed_wrong = _wrong(routed, by_routed.x_adv, y)
    assert np.all(routed_wrong[by_routed.fooled])
    np.testing.assert_array_equal(by_routed.fooled, routed_wrong)
    # ...which counting by the gradient logits would not have guaranteed.
    assert np.any(own.fooled & ~_wrong(routed, own.x_adv, y))


def test_apgd_t_targets_and_judge(setup):
    tradeoff, routed, x, y = setup
    attack = APGD(Target(tradeoff, judge=routed), LINF, loss="targeted_dlr", steps=8, n_targets=20)
    assert attack.name == "apgd_t"
    result = attack.attack(x[:32], y[:32], seed=3)
    np.testing.assert_array_equal(result.fooled, _wrong(routed, result.x_adv, y[:32]))
    assert result.fooled.sum() > 16
    with pytest.raises(ValueError, match="4 classes"):
        toy = Target(lambda z: tf.reshape(z, [-1, 784])[:, :3])
        APGD(toy, LINF, loss="targeted_dlr", steps=2).run(x[:2], np.array([0, 1]), seed=0)


@pytest.mark.parametrize("threat", [LINF, ThreatModel("l2", 2.0)], ids=["linf", "l2"])
def test_ball_range_and_seeds(setup, threat):
    tradeoff, _, x, y = setup
    x, y = x[:40], y[:40]
    attack = APGD(Target(tradeoff), threat, loss="dlr", steps=5, restarts=2, batch_size=24)
    a, b, c = attack.run(x, y, seed=1), attack.run(x, y, seed=1), attack.run(x, y, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for x_adv in (a, c):
        assert x_adv.dtype == np.float32 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        delta = (x_adv - x).reshape(len(x), -1)
        size = np.abs(delta).max(1) if threat.norm == "linf" else np.linalg.norm(delta, axis=1)
        assert size.max() <= threat.epsilon + 1e-5
        assert size.max() > 0.9 * threat.epsilon  # it moved
    # Random starts: on the sphere of the ball (mid-grey images, so [0, 1] does not cut it),
    # a function of the seed.
    grey = np.full((6, 28, 28, 1), 0.5, np.float32)
    starts = [attack.start(grey, seed).numpy().reshape(6, -1) - 0.5 for seed in (4, 4, 5)]
    size = np.abs(starts[0]).max(1) if threat.norm == "linf" else np.linalg.norm(starts[0], axis=1)
    np.testing.assert_allclose(size, threat.epsilon, rtol=1e-5)
    np.testing.assert_array_equal(starts[0], starts[1])
    assert not np.allclose(starts[0], starts[2])


def test_bad_arguments_raise():
    target = Target(lambda z: z)
    with pytest.raises(ValueError, match="loss='cw'"):
        APGD(target, LINF, loss="cw")
    with pytest.raises(ValueError, match="steps=0"):
        APGD(target, LINF, steps=0)
    with pytest.raises(ValueError, match="rho=1.5"):
        APGD(target, LINF, rho=1.5)
