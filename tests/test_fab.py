"""FAB-T: the exact L-inf hyperplane-box projection, the minimal distance on linear models, the
judge rule, the eps ball on a trained model, and seeding."""

import os

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog

from nfi_tf.attacks.base import Target, fooled, seed_tensor
from nfi_tf.attacks.fab import FABTargeted, project_linf_hyperplane_box, random_start
from nfi_tf.attacks.threat import ThreatModel


def _lp_min_linf(t, w, b, lo=0.0, hi=1.0):
    """min |d|_inf s.t. <w, t + d> = b, lo <= t + d <= hi, as a linear program in (d, r)."""
    dims = t.size
    cost = np.zeros(dims + 1)
    cost[-1] = 1.0
    eye, ones = np.eye(dims), np.ones((dims, 1))
    a_ub = np.block([[eye, -ones], [-eye, -ones]])  # d_i <= r and -d_i <= r
    a_eq = np.concatenate([w, [0.0]])[None]
    bounds = [(lo - ti, hi - ti) for ti in t] + [(0.0, None)]
    res = linprog(cost, a_ub, np.zeros(2 * dims), a_eq, [b - w @ t], bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


def _random_problems(rng, n, dims):
    """n feasible problems: b is <w, z> at a box point z; some w_i = 0, some t_i on a face."""
    t = rng.uniform(0, 1, (n, dims))
    t[rng.uniform(size=(n, dims)) < 0.1] = 0.0
    t[rng.uniform(size=(n, dims)) < 0.1] = 1.0
    w = rng.normal(size=(n, dims))
    w[rng.uniform(size=(n, dims)) < 0.2] = 0.0
    b = np.sum(w * rng.uniform(0, 1, (n, dims)), axis=1)
    return t, w, b


@pytest.mark.parametrize("dims", [5, 9, 14, 20])
def test_projection_matches_the_linear_program(dims):
    rng = np.random.default_rng(dims)
    t, w, b = _random_problems(rng, 12, dims)
    p = project_linf_hyperplane_box(t, w, b).numpy()  # float64, one batched call
    np.testing.assert_allclose(np.sum(w * p, axis=1), b, atol=1e-9)
    assert p.min() >= 0.0 and p.max() <= 1.0
    for i in range(len(t)):
        assert abs(np.abs(p[i] - t[i]).max() - _lp_min_linf(t[i], w[i], b[i])) < 1e-4


def test_projection_in_float32_at_image_size():
    """The attack runs the projection in float32 on 784-dim rows: still the LP optimum."""
    rng = np.random.default_rng(7)
    t, w, b = _random_problems(rng, 3, 784)
    p = project_linf_hyperplane_box(t.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    p = p.numpy().astype(np.float64)
    assert p.min() >= 0.0 and p.max() <= 1.0
    for i in range(len(t)):
        assert abs(w[i] @ p[i] - b[i]) < 1e-4 * np.abs(w[i]).sum()
        assert abs(np.abs(p[i] - t[i]).max() - _lp_min_linf(t[i], w[i], b[i])) < 1e-4


def test_projection_without_the_box_is_the_l1_dual_formula():
    """Far from the faces, the L-inf distance to a hyperplane is |<w, t> - b| / |w|_1."""
    t = np.array([[0.5, 0.5, 0.5, 0.5]])
    w = np.array([[1.0, -2.0, 0.5, 0.0]])
    b = np.array([0.1])  # <w, t> = -0.25, gap 0.35 over |w|_1 = 3.5: r = 0.1
    p = project_linf_hyperplane_box(t, w, b).numpy()
    np.testing.assert_allclose(p, [[0.6, 0.4, 0.6, 0.5]], atol=1e-12)


def test_projection_onto_an_unreachable_hyperplane_is_the_closest_corner():
    t = np.array([[0.2, 0.7]])
    w = np.array([[1.0, -1.0]])
    p = project_linf_hyperplane_box(t, w, np.array([5.0])).numpy()  # max of <w, z> on the box is 1
    np.testing.assert_allclose(p, [[1.0, 0.0]])


def _linear(n_classes, dims, seed, inert_feature=False):
    """logits = x W^T + c on points away from the faces, labels = the clean argmax; with
    `inert_feature`, feature 0 does not enter the logits."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(n_classes, dims)).astype(np.float32)
    if inert_feature:
        weights[:, 0] = 0.0
    bias = (0.5 * rng.normal(size=n_classes)).astype(np.float32)
    x = rng.uniform(0.4, 0.6, (24, dims)).astype(np.float32)
    logits = x @ weights.T + bias
    w_t, b_t = tf.constant(weights.T), tf.constant(bias)
    return (lambda v: tf.matmul(v, w_t) + b_t), weights, x, logits, logits.argmax(1).astype(np.int32)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fab_finds_the_closed_form_distance_on_a_linear_model(n_classes):
    fn, weights, x, logits, y = _linear(n_classes, 20, seed=n_classes)
    rows = np.arange(len(y))
    # Distance to the boundary with class j: (z_y - z_j) / |w_j - w_y|_1 (no face is reached).
    dist = np.stack([(logits[rows, y] - logits[:, j]) / np.maximum(np.abs(weights[j] - weights[y]).sum(1),
                                                                    1e-12)
                     for j in range(n_classes)], axis=1)
    dist[rows, y] = np.inf
    assert dist.min(1).max() < 0.4  # the faces are out of reach: the closed form holds
    scores = logits.copy()
    scores[rows, y] = -np.inf
    first_target = scores.argmax(1)

    attack = FABTargeted(Target(fn), ThreatModel("linf", 1.0), steps=100)
    res = attack.run_with_info(x, y, seed=0)
    assert res.fooled.all()
    assert np.all(res.distance >= dist.min(1) * (1 - 1e-4))  # nothing beats the optimum
    # FAB approaches the boundary from the adversarial side; with eta = 1.05 and beta = 0.9 its
    # closest iterate settles within about 0.5% of it.
    np.testing.assert_allclose(res.distance, dist[rows, first_target], rtol=1e-2)


def test_only_points_that_fool_the_judge_are_returned():
    fn, _, x, _, y = _linear(3, 20, seed=5, inert_feature=True)
    assert (y == 0).any() and (y != 0).any()
    # Feature 0 does not enter the logits (so FAB never moves it) and switches the judge, like the
    # routed model's hard switch: below 0.3 a head that always answers class 0 serves the input.
    # The label-0 examples are put there: they fool the logits but can never fool the judge.
    x[:, 0] = np.where(y == 0, 0.2, 0.5)

    def judge(v):
        return fn(v) + 100.0 * tf.cast(v[:, :1] < 0.3, tf.float32) * tf.one_hot([0], 3)

    assert not fooled(judge(tf.constant(x)), y).numpy().any()  # the judge is right on clean inputs
    threat = ThreatModel("linf", 1.0)
    plain = FABTargeted(Target(fn), threat, steps=30).run_with_info(x, y, seed=0)
    judged = FABTargeted(Target(fn, judge=judge), threat, steps=30).run_with_info(x, y, seed=0)
    assert plain.fooled.all()  # every example fools the logits...

    verdict = fooled(judge(tf.constant(judged.x_adv)), y).numpy()
    np.testing.assert_array_equal(judged.fooled, verdict)
    protected = x[:, 0] < 0.3
    np.testing.assert_array_equal(verdict, ~protected)  # ...but only the unprotected fool the judge
    np.testing.assert_array_equal(judged.x_adv[protected], x[protected])  # the rest come back as x
    np.testing.assert_array_equal(judged.x_adv[~protected], plain.x_adv[~protected])


def test_iterates_are_judged_not_the_logits():
    """Class 2 and class 1 read disjoint halves of the input and class 2 is both the first target
    and the closer boundary, but the judge never lets class 2 win: the first target's iterates
    fool the logits and are refused, so the example stays robust and the second target fools it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.4, 0.6, (16, 20)).astype(np.float32)
    weights = np.zeros((3, 20), np.float32)
    weights[1, 10:] = 1.0
    weights[2, :10] = 1.0
    bias = np.array([6.0, -1.0, 0.0], np.float32)
    w_t, b_t = tf.constant(weights.T), tf.constant(bias)

    def fn(v):
        return tf.matmul(v, w_t) + b_t

    def judge(v):
        # Same clean ranking as the logits, but class 2 never beats class 0.
        z = fn(v)
        return tf.stack([z[:, 0], z[:, 1], tf.minimum(z[:, 2], z[:, 0] - 0.01)], axis=1)

    logits = x @ weights.T + bias
    y = np.zeros(16, np.int32)
    assert np.all(logits.argmax(1) == 0) and np.all(logits[:, 2] > logits[:, 1])
    to_one, to_two = (logits[:, 0] - logits[:, 1]) / 10, (logits[:, 0] - logits[:, 2]) / 10
    assert np.all(to_two < to_one) and to_one.max() < 0.4  # no face is reached

    threat = ThreatModel("linf", 1.0)
    first_only = FABTargeted(Target(fn, judge=judge), threat, steps=50, n_targets=1)
    both = FABTargeted(Target(fn, judge=judge), threat, steps=50, n_targets=2)
    res_first = first_only.run_with_info(x, y, seed=0)
    assert not res_first.fooled.any()
    np.testing.assert_array_equal(res_first.x_adv, x)
    res = both.run_with_info(x, y, seed=0)
    assert res.fooled.all()
    np.testing.assert_array_equal(np.argmax(judge(tf.constant(res.x_adv)).numpy(), axis=1), 1)
    np.testing.assert_allclose(res.distance, to_one, rtol=1e-2)
    # Without the judge the first target's boundary, the closer one, is what FAB returns.
    plain = FABTargeted(Target(fn), threat, steps=50).run_with_info(x, y, seed=0)
    np.testing.assert_allclose(plain.distance, to_two, rtol=1e-2)


@pytest.fixture(scope="module")
def trained_target(trained_mnist_dir, mnist_test_arrays):
    from nfi_tf.model_io import load_classifier

    model = load_classifier(os.path.join(trained_mnist_dir, "model.keras"))
    x, y = mnist_test_arrays
    return Target(lambda z: model(z, training=False)["tradeoff"]), x[:64], y[:64].astype(np.int32)


def test_fab_on_the_trained_model_stays_in_the_ball_and_fools_the_judge(trained_target):
    target, x, y = trained_target
    res = FABTargeted(target, ThreatModel("linf", 0.3), steps=20).run_with_info(x, y, seed=0)
    assert res.x_adv.dtype == np.float32
    assert np.abs(res.x_adv - x).max() <= 0.3 + 1e-6
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    verdict = fooled(target.judge_logits(tf.constant(res.x_adv)), y).numpy()
    np.testing.assert_array_equal(res.fooled, verdict)
    clean_error = fooled(target.judge_logits(tf.constant(x)), y).numpy()
    np.testing.assert_array_equal(res.x_adv[~res.fooled], x[~res.fooled])
    assert np.all(res.distance[res.fooled & ~clean_error] > 0)
    assert res.fooled.mean() > clean_error.mean() + 0.2


def test_fab_is_a_function_of_its_seed(trained_target):
    target, x, y = trained_target
    attack = FABTargeted(target, ThreatModel("linf", 0.2), steps=5, restarts=2, n_targets=2)
    a = attack.run(x[:32], y[:32], seed=3)
    b = attack.run(x[:32], y[:32], seed=3)
    np.testing.assert_array_equal(a, b)
    # The restarts draw their start from the seed: eps/2 away from x (in L-inf), inside the box.
    x0 = tf.constant(x[:8])
    s1 = random_start(x0, 0.2, seed_tensor(3, "fab_t", 0, 1)).numpy()
    s2 = random_start(x0, 0.2, seed_tensor(4, "fab_t", 0, 1)).numpy()
    assert not np.array_equal(s1, s2)
    assert np.abs(s1 - x[:8]).max() <= 0.1 + 1e-6 and s1.min() >= 0.0 and s1.max() <= 1.0


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"restarts": 0}, {"n_targets": 0}, {"alpha_max": 0.0},
                                    {"eta": 0.9}, {"beta": 1.0}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="Received"):
        FABTargeted(Target(lambda v: v), ThreatModel("linf", 0.3), **kwargs)


def test_l2_threat_is_refused():
    with pytest.raises(ValueError, match="Received: threat.norm='l2'"):
        FABTargeted(Target(lambda v: v), ThreatModel("l2", 0.5))
