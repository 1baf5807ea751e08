"""FAB-T: the exact L-inf and L2 hyperplane-box projections, the minimal distance on linear
models, the judge rule, the eps ball on a trained model, and seeding, in both norms."""

import os

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog

from nfi_tf.attacks.base import Target, fooled, seed_tensor
from nfi_tf.attacks.fab import (
    FABTargeted,
    project_l2_hyperplane_box,
    project_linf_hyperplane_box,
    random_start,
)
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


# ---- L2 ----


def _bisection_min_l2(t, w, b, lo=0.0, hi=1.0):
    """The L2 hyperplane-box projection by a slow bisection on the KKT multiplier: each coordinate
    moves toward the hyperplane by min(lam |w_i|, room_i); lam makes the gap close exactly."""
    c = w @ t - b
    direction = -np.sign(c) * np.sign(w)
    room = np.where(direction > 0, hi - t, t - lo)
    room = np.where(direction == 0, 0.0, room)

    def closed(lam):
        return np.sum(np.abs(w) * np.minimum(lam * np.abs(w), room))

    upper = 1.0
    while closed(upper) < abs(c) and upper < 1e15:
        upper *= 2
    lower = 0.0
    for _ in range(200):
        mid = 0.5 * (lower + upper)
        lower, upper = (mid, upper) if closed(mid) < abs(c) else (lower, mid)
    return t + direction * np.minimum(upper * np.abs(w), room)


@pytest.mark.parametrize("dims", [3, 8, 20, 60])
def test_l2_projection_matches_a_bisection_and_beats_every_feasible_point(dims):
    rng = np.random.default_rng(100 + dims)
    t, w, b = _random_problems(rng, 16, dims)
    p = project_l2_hyperplane_box(t, w, b).numpy()
    np.testing.assert_allclose(np.sum(w * p, axis=1), b, atol=1e-9)  # on the hyperplane
    assert p.min() >= 0.0 and p.max() <= 1.0  # in the box
    dist = np.linalg.norm(p - t, axis=1)
    for i in range(len(t)):
        np.testing.assert_allclose(p[i], _bisection_min_l2(t[i], w[i], b[i]), atol=1e-9)
        # No box point on the hyperplane is closer: random ones, drawn by walking a box point
        # that lies on it (b was made from one) along directions inside the hyperplane.
        z0 = _feasible_point(rng, w[i], b[i])
        for _ in range(200):
            v = rng.normal(size=dims)
            v -= (v @ w[i]) / (w[i] @ w[i]) * w[i]
            z = z0 + rng.uniform(0, 0.3) * v
            if z.min() >= 0 and z.max() <= 1:
                assert dist[i] <= np.linalg.norm(z - t[i]) + 1e-12
        assert dist[i] <= np.linalg.norm(z0 - t[i]) + 1e-12


def _feasible_point(rng, w, b):
    """A box point on {<w, z> = b}: the L2 projection of a random box point (checked)."""
    z = project_l2_hyperplane_box(rng.uniform(0, 1, (1, w.size)), w[None], np.array([b])).numpy()[0]
    assert abs(w @ z - b) < 1e-9 and z.min() >= 0 and z.max() <= 1
    return z


def test_l2_projection_without_the_box_is_the_euclidean_formula_and_unreachable_gives_the_corner():
    t = np.array([[0.5, 0.5, 0.5, 0.5]])
    w = np.array([[1.0, -2.0, 0.5, 0.0]])
    b = np.array([0.1])  # <w, t> = -0.25: t + (b - <w, t>) w / |w|^2 = t + 0.35 / 5.25 w
    p = project_l2_hyperplane_box(t, w, b).numpy()
    np.testing.assert_allclose(p, t + 0.35 / 5.25 * w, atol=1e-12)
    # One coordinate hits its face: it stops there and the others make up the gap.
    t2 = np.array([[0.95, 0.5]])
    w2 = np.array([[1.0, 1.0]])
    p2 = project_l2_hyperplane_box(t2, w2, np.array([1.75])).numpy()  # free answer (1.1, 0.65)
    np.testing.assert_allclose(p2, [[1.0, 0.75]], atol=1e-12)
    unreachable = project_l2_hyperplane_box(np.array([[0.2, 0.7]]), np.array([[1.0, -1.0]]),
                                            np.array([5.0])).numpy()
    np.testing.assert_allclose(unreachable, [[1.0, 0.0]])


def test_l2_projection_in_float32_at_image_size():
    rng = np.random.default_rng(11)
    t, w, b = _random_problems(rng, 3, 784)
    p = project_l2_hyperplane_box(t.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    p = p.numpy().astype(np.float64)
    assert p.min() >= 0.0 and p.max() <= 1.0
    for i in range(len(t)):
        assert abs(w[i] @ p[i] - b[i]) < 1e-4 * np.abs(w[i]).sum()
        ref = _bisection_min_l2(t[i], w[i], b[i])
        assert abs(np.linalg.norm(p[i] - t[i]) - np.linalg.norm(ref - t[i])) < 1e-4


@pytest.mark.parametrize("n_classes", [2, 3])
def test_l2_fab_finds_the_closed_form_distance_and_fails_below_it(n_classes):
    fn, weights, x, logits, y = _linear(n_classes, 20, seed=10 + n_classes)
    rows = np.arange(len(y))
    # The L2 distance to the boundary with class j: (z_y - z_j) / |w_j - w_y|_2.
    dist = np.stack([(logits[rows, y] - logits[:, j])
                     / np.maximum(np.linalg.norm(weights[j] - weights[y], axis=1), 1e-12)
                     for j in range(n_classes)], axis=1)
    dist[rows, y] = np.inf
    # The closed form holds when the free minimizer x + (z_j - z_y) (w_j - w_y) / |w_j - w_y|^2
    # stays in the box, for every class j.
    for j in range(n_classes):
        step = weights[j] - weights[y]
        free = x + ((logits[:, j] - logits[rows, y]) / np.maximum((step ** 2).sum(1), 1e-12))[:, None] * step
        assert np.all(free[y != j] > 0.0) and np.all(free[y != j] < 1.0)
    scores = logits.copy()
    scores[rows, y] = -np.inf
    to_first = dist[rows, scores.argmax(1)]

    res = FABTargeted(Target(fn), ThreatModel("l2", 1.0), steps=100).run_with_info(x, y, seed=0)
    assert res.fooled.all()
    l2 = np.linalg.norm((res.x_adv - x).astype(np.float64), axis=1)
    np.testing.assert_allclose(res.distance, l2, rtol=1e-6)
    assert np.all(l2 >= dist.min(1) * (1 - 1e-4))  # nothing beats the optimum
    np.testing.assert_allclose(l2, to_first, rtol=1e-2)
    # The L-inf attack stops at its own (different) optimum; the L2 one is the L2 minimum.
    linf = FABTargeted(Target(fn), ThreatModel("linf", 1.0), steps=100).run_with_info(x, y, seed=0)
    assert np.mean(np.linalg.norm(linf.x_adv - x, axis=1)) > 1.05 * np.mean(l2)

    # eps just below each example's distance: nothing within eps fools it, so x comes back.
    eps = 0.97 * dist.min(1).min()
    below = FABTargeted(Target(fn), ThreatModel("l2", float(eps)), steps=100, restarts=2)
    res_below = below.run_with_info(x, y, seed=0)
    assert not res_below.fooled.any()
    np.testing.assert_array_equal(res_below.x_adv, x)
    # At an eps between the examples' distances, exactly those within reach are fooled.
    mid = float(np.median(to_first))
    res_mid = FABTargeted(Target(fn), ThreatModel("l2", mid), steps=100).run_with_info(x, y, seed=0)
    clear = (to_first < 0.98 * mid) & (dist.min(1) < 0.98 * mid)
    assert clear.sum() >= 5 and (dist.min(1) > mid).sum() >= 5
    assert res_mid.fooled[clear].all() and not res_mid.fooled[dist.min(1) > mid].any()
    assert np.all(np.linalg.norm((res_mid.x_adv - x).astype(np.float64), axis=1) <= mid + 1e-5)


def test_l2_fab_on_the_trained_model_stays_in_the_ball_and_is_seeded(trained_target):
    target, x, y = trained_target
    eps = 1.5
    attack = FABTargeted(target, ThreatModel("l2", eps), steps=10, restarts=2, n_targets=2)
    res = attack.run_with_info(x[:32], y[:32], seed=3)
    x = x[:32]
    l2 = np.linalg.norm((res.x_adv - x).reshape(len(x), -1).astype(np.float64), axis=1)
    assert l2.max() <= eps + 1e-5
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    np.testing.assert_allclose(res.distance, l2, rtol=1e-6)
    verdict = fooled(target.judge_logits(tf.constant(res.x_adv)), y[:32]).numpy()
    np.testing.assert_array_equal(res.fooled, verdict)
    clean_error = fooled(target.judge_logits(tf.constant(x)), y[:32]).numpy()
    assert res.fooled.mean() > clean_error.mean()
    np.testing.assert_array_equal(res.x_adv, attack.run(x, y[:32], seed=3))
    # The L2 restart point: eps/2 away in L2 (less where the box clips it), from the seed.
    x0 = tf.constant(x[:8])
    s1 = random_start(x0, eps, seed_tensor(3, "fab_t", 0, 1), "l2").numpy()
    s2 = random_start(x0, eps, seed_tensor(4, "fab_t", 0, 1), "l2").numpy()
    assert not np.array_equal(s1, s2)
    start_l2 = np.linalg.norm((s1 - x[:8]).reshape(8, -1), axis=1)
    assert np.all(start_l2 <= 0.5 * eps + 1e-5) and np.all(start_l2 > 0.1 * eps)
    assert s1.min() >= 0.0 and s1.max() <= 1.0
