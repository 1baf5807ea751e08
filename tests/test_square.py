"""Square (L-inf and L2): the p schedule, an undefended MNIST CNN broken with few queries, the ball
and judge rules, query bookkeeping, seeding, a pure-numpy model (the ONNX Runtime path), and the
L2 version's pseudo-gaussian patterns, eps sphere and search."""

from __future__ import annotations

import numpy as np
import pytest

from nfi_tf.attacks.square import (
    Square,
    keras_query,
    margin_and_loss,
    meta_pseudo_gaussian,
    p_schedule,
    square_side,
    square_side_l2,
)
from nfi_tf.attacks.threat import ThreatModel

N_ATTACK = 64


class NumpyLinear:
    """A fixed random linear model in numpy that records every batch it is queried with."""

    def __init__(self, seed: int = 0, features: int = 28 * 28, classes: int = 10):
        rng = np.random.default_rng(seed)
        self.w = (rng.normal(size=(features, classes)) / np.sqrt(features)).astype(np.float32)
        self.b = rng.normal(size=classes).astype(np.float32) * 0.1
        self.batches: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def __call__(self, images):
        # The attack must hand over plain numpy float32: no TF tensor reaches the model side.
        assert type(images) is np.ndarray and images.dtype == np.float32, type(images)
        logits = images.reshape(len(images), -1) @ self.w + self.b
        self.batches.append(images.copy())
        self.outputs.append(logits)
        return logits

    def predict(self, images):
        return np.argmax(images.reshape(len(images), -1) @ self.w + self.b, axis=1)


@pytest.fixture(scope="module")
def undefended_mnist():
    """A plain (non-adversarial) small CNN, 1 epoch on 4096 real MNIST training images."""
    import keras

    from nfi_tf import data
    from nfi_tf.config import make_config

    images, labels = data.load_arrays(make_config("mnist").data, "train", 4096)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.uint8_to_float(images), labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return keras_query(lambda t: model(t, training=False), batch_size=256)


@pytest.fixture(scope="module")
def mnist_small(mnist_test_arrays):
    x, y = mnist_test_arrays
    return x[:N_ATTACK], y[:N_ATTACK]


def test_p_schedule_breakpoints_and_rescaling():
    # 10,000 queries: no rescaling, the breakpoints themselves (p halves AFTER each bound).
    expected = {0: 0.8, 10: 0.8, 11: 0.4, 50: 0.4, 51: 0.2, 200: 0.2, 201: 0.1, 500: 0.1, 501: 0.05,
                1000: 0.05, 1001: 0.025, 2001: 0.0125, 4000: 0.0125, 4001: 0.00625, 6001: 0.003125,
                8000: 0.003125, 8001: 0.0015625, 9999: 0.0015625}
    for it, p in expected.items():
        assert p_schedule(it, 10_000, 0.8) == pytest.approx(p), it
    # 1000 queries: iteration i acts as 10 * i.
    assert p_schedule(1, 1000, 0.8) == pytest.approx(0.8)    # 10
    assert p_schedule(2, 1000, 0.8) == pytest.approx(0.4)    # 20
    assert p_schedule(5, 1000, 0.8) == pytest.approx(0.4)    # 50
    assert p_schedule(6, 1000, 0.8) == pytest.approx(0.2)    # 60
    assert p_schedule(101, 1000, 0.8) == pytest.approx(0.025)  # 1010
    # 300 queries: 100 -> 3333 (p_init / 64); 1 -> 33 (p_init / 2).
    assert p_schedule(100, 300, 0.8) == pytest.approx(0.0125)
    assert p_schedule(1, 300, 0.8) == pytest.approx(0.4)
    # 5000: 6 / 5000 * 10000 truncates to 11, past the first bound.
    assert p_schedule(6, 5000, 0.5) == pytest.approx(0.25)
    assert p_schedule(5, 5000, 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Received: n_queries=0"):
        p_schedule(0, 0, 0.8)
    with pytest.raises(ValueError, match="Received: p_init=1.5"):
        p_schedule(0, 10, 1.5)


def test_square_side():
    # MNIST: round(sqrt(0.8 * 784)) = round(25.04) = 25; CIFAR: round(sqrt(0.8 * 1024)) = round(28.6) = 29.
    assert square_side(0.8, 28, 28, 1) == 25
    assert square_side(0.8, 32, 32, 3) == 29
    assert square_side(0.8 / 512, 32, 32, 3) == 1   # sqrt(1.6) = 1.26
    assert square_side(1e-6, 28, 28, 1) == 1        # never below one pixel


def test_margin_and_ce_loss():
    logits = np.array([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    y = np.array([0, 0])
    margin, loss = margin_and_loss(logits, y, "margin")
    np.testing.assert_allclose(margin, [1.0, -3.0])
    np.testing.assert_allclose(loss, margin)
    _, neg_ce = margin_and_loss(logits, y, "ce")
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(neg_ce, log_softmax[:, 0])


def test_undefended_mnist_cnn_is_broken(undefended_mnist, mnist_small):
    x, y = mnist_small
    clean_acc = float(np.mean(np.argmax(undefended_mnist(x), 1) == y))
    assert clean_acc > 0.9, clean_acc
    attack = Square(undefended_mnist, ThreatModel("linf", 0.3), n_queries=1000, p_init=0.8)
    x_adv = attack.run(x, y, seed=0)
    adv_acc = float(np.mean(np.argmax(undefended_mnist(x_adv), 1) == y))
    assert adv_acc <= 0.05, (clean_acc, adv_acc)
    # Breaking it took real search, not only the stripe start or the clean errors.
    assert attack.queries_used.max() > 1


def test_ball_judge_and_query_bookkeeping(mnist_small):
    x, _ = mnist_small
    model = NumpyLinear(seed=1)
    y = model.predict(x)
    y[:5] = (y[:5] + 1) % 10   # five examples misclassified before any attack
    eps = 0.03
    attack = Square(model, ThreatModel("linf", eps), n_queries=60, restarts=2)
    x_adv = attack.run(x, y, seed=3)
    assert x_adv.dtype == np.float32 and x_adv.shape == x.shape
    assert np.abs(x_adv - x).max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # The judge is the query: "fooled" means the query misclassifies the returned point, both ways.
    judged = model.predict(x_adv) != y
    np.testing.assert_array_equal(attack.fooled, judged)
    assert 0 < attack.fooled[5:].sum() < len(x) - 5, attack.fooled.sum()   # a real, partial attack
    # Clean errors: no attack queries, the clean image back.
    np.testing.assert_array_equal(attack.queries_used[:5], 0)
    np.testing.assert_array_equal(x_adv[:5], x[:5])
    # Every attacked pixel sits on a corner of the box: clip(x + eps) or clip(x - eps).
    up, down = np.clip(x + np.float32(eps), 0, 1), np.clip(x - np.float32(eps), 0, 1)
    assert np.all((x_adv[5:] == up[5:]) | (x_adv[5:] == down[5:]))
    # Per restart, one stripe query plus at most n_queries iterations; only the never-fooled use it all.
    assert attack.queries_used[5:].min() >= 1
    assert attack.queries_used.max() == 2 * (60 + 1)
    attacked = np.arange(len(x)) >= 5
    assert np.all(attack.queries_used[attacked & ~attack.fooled] == 2 * (60 + 1))
    assert np.all(attack.queries_used[attacked & attack.fooled] < 2 * (60 + 1))
    # Only still-robust examples are queried: the rows sent are the clean check plus queries_used.
    rows_sent = sum(len(b) for b in model.batches)
    assert rows_sent == len(x) + attack.queries_used.sum()


def test_never_fooled_returns_lowest_margin_point(mnist_small):
    x, _ = mnist_small
    model = NumpyLinear(seed=2)
    y = model.predict(x)
    margin, _ = margin_and_loss(model(x), y, "margin")
    i = int(np.argmax(margin))   # the most robust example; a tiny eps cannot fool it
    model.batches.clear()
    model.outputs.clear()
    attack = Square(model, ThreatModel("linf", 0.002), n_queries=40, restarts=2)
    x_adv = attack.run(x[i:i + 1], y[i:i + 1], seed=0)
    assert not attack.fooled[0]
    # Every candidate after the clean check, with the logits the attack saw for it.
    queried = np.concatenate(model.batches[1:])
    margins, _ = margin_and_loss(np.concatenate(model.outputs[1:]), np.full(len(queried), y[i]), "margin")
    assert len(queried) == 2 * (40 + 1)
    # The first candidate is the stripe start: each (column, channel) all +eps or all -eps.
    eps = np.float32(0.002)
    is_up = queried[0] == np.clip(x[i] + eps, 0, 1)
    assert np.all(is_up | (queried[0] == np.clip(x[i] - eps, 0, 1)))
    assert np.all(is_up.all(axis=0) | (~is_up).all(axis=0))
    assert 0 < is_up[0].sum() < is_up.shape[1]   # the columns' signs are drawn, not all equal
    assert margins.min() < margins[0]   # the search did improve on the stripe start
    np.testing.assert_array_equal(x_adv[0], queried[np.argmin(margins)])


def test_seeded(mnist_small):
    x, _ = mnist_small
    model = NumpyLinear(seed=3)
    y = model.predict(x)
    runs = []
    for seed in (7, 7, 8):
        attack = Square(model, ThreatModel("linf", 0.02), n_queries=30)
        runs.append((attack.run(x, y, seed=seed), attack.queries_used.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_numpy_model_accuracy_drops(mnist_small):
    x, _ = mnist_small
    model = NumpyLinear(seed=4)
    y = model.predict(x)   # 100% clean accuracy by construction
    for loss in ("margin", "ce"):
        attack = Square(model, ThreatModel("linf", 0.1), n_queries=400, loss=loss)
        x_adv = attack.run(x, y, seed=0)
        acc = float(np.mean(model.predict(x_adv) == y))
        assert acc < 0.2, (loss, acc)


def test_bad_arguments():
    model = NumpyLinear()
    with pytest.raises(ValueError, match="Received: loss='dlr'"):
        Square(model, ThreatModel("linf", 0.1), loss="dlr")
    with pytest.raises(ValueError, match="Received: restarts=0"):
        Square(model, ThreatModel("linf", 0.1), restarts=0)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        keras_query(lambda t: t, batch_size=0)


# ---- L2 ----


def _rectangles_by_loop(rows, cols):
    """The nested-rectangle bump built the slow way: rectangle k spans rows c_r - k .. c_r + k and
    columns c_c - k .. c_c + k (cut at the edges) and adds 1 / (k + 1)^2, until one covers all."""
    bump = np.zeros((rows, cols))
    k = 0
    while True:
        r0, c0 = rows // 2 - k, cols // 2 - k
        bump[max(r0, 0):r0 + 2 * k + 1, max(c0, 0):c0 + 2 * k + 1] += 1.0 / (k + 1) ** 2
        if r0 <= 0 and c0 <= 0 and r0 + 2 * k + 1 >= rows and c0 + 2 * k + 1 >= cols:
            return bump / np.sqrt(np.sum(bump ** 2))
        k += 1


@pytest.mark.parametrize("side", [1, 3, 4, 5, 7, 10, 25])
def test_meta_pseudo_gaussian_is_two_opposite_unit_bumps(side):
    block = meta_pseudo_gaussian(side)
    assert block.shape == (side, side)
    assert np.sum(block ** 2) == pytest.approx(1.0)
    top = side // 2
    assert np.all(block[:top] > 0) and np.all(block[top:] < 0)
    if top:
        # Each half is a nested-rectangle bump, the halves weighted as the reference does.
        upper, lower = _rectangles_by_loop(top, side), _rectangles_by_loop(side - top, side)
        joined = np.concatenate([upper, -lower]) / np.sqrt(2.0)
        np.testing.assert_allclose(block, joined, atol=1e-12)
        assert np.argmax(block[:top].sum(1)) == top // 2  # peaked at its centre row


def test_square_side_l2():
    assert square_side_l2(0.8, 28, 28, 1) == 25       # round(25.04), odd
    assert square_side_l2(0.8, 32, 32, 3) == 29       # round(28.6)
    assert square_side_l2(0.1, 28, 28, 1) == 9        # round(8.85)
    assert square_side_l2(0.05, 28, 28, 1) == 7       # round(6.26) = 6, even: 7
    assert square_side_l2(0.8 / 512, 32, 32, 3) == 3  # never below 3
    assert square_side_l2(0.8, 2, 2, 1) == 2          # capped at the image


def test_l2_points_are_on_the_sphere_and_in_the_box(mnist_small):
    """Away from the box faces (an image at 0.5 and eps <= 0.5, so no pixel can move past one),
    every candidate the attack queries is exactly eps away in L2; on real images, within eps."""
    x, _ = mnist_small
    model = NumpyLinear(seed=5)
    flat = np.full((8, 28, 28, 1), 0.5, np.float32)
    y_flat = model.predict(flat)
    attack = Square(model, ThreatModel("l2", 0.5), n_queries=50)
    x_adv = attack.run(flat, y_flat, seed=1)
    queried = np.concatenate(model.batches[1:])  # every candidate after the clean check
    dist = np.linalg.norm((queried - 0.5).reshape(len(queried), -1).astype(np.float64), axis=1)
    np.testing.assert_allclose(dist, 0.5, rtol=1e-5)
    assert np.all(np.linalg.norm((x_adv - flat).reshape(8, -1), axis=1) <= 0.5 + 1e-5)

    model.batches.clear()
    y = model.predict(x)
    eps = 3.0
    attack = Square(model, ThreatModel("l2", eps), n_queries=100, restarts=2)
    x_adv = attack.run(x, y, seed=2)
    for batch in model.batches[1:]:  # (each restart attacks a subset; every candidate checked)
        assert batch.min() >= 0.0 and batch.max() <= 1.0
    assert x_adv.dtype == np.float32 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    l2 = np.linalg.norm((x_adv - x).reshape(len(x), -1).astype(np.float64), axis=1)
    assert l2.max() <= eps + 1e-5
    np.testing.assert_array_equal(attack.fooled, model.predict(x_adv) != y)


def test_l2_breaks_a_non_robust_model_and_never_adds_a_correct_prediction(mnist_small):
    x, labels = mnist_small
    model = NumpyLinear(seed=4)
    y = labels.astype(np.int64)  # the true labels: the model gets many wrong before any attack
    correct = model.predict(x) == y
    assert 0 < correct.sum() < len(x)
    attack = Square(model, ThreatModel("l2", 2.0), n_queries=300)
    x_adv = attack.run(x, y, seed=0)
    correct_adv = model.predict(x_adv) == y
    assert not np.any(correct_adv & ~correct)  # nothing it got wrong becomes right
    np.testing.assert_array_equal(x_adv[~correct], x[~correct])
    assert correct_adv.sum() <= 0.2 * correct.sum(), (correct.sum(), correct_adv.sum())
    # A tiny eps breaks fewer (the search is real, not the start alone).
    small = Square(model, ThreatModel("l2", 0.2), n_queries=300).run(x, y, seed=0)
    assert (model.predict(small) == y).sum() > correct_adv.sum()


def test_l2_undefended_mnist_cnn_is_broken(undefended_mnist, mnist_small):
    x, y = mnist_small
    eps = 5.0
    attack = Square(undefended_mnist, ThreatModel("l2", eps), n_queries=300)
    x_adv = attack.run(x, y, seed=0)
    clean_acc = float(np.mean(np.argmax(undefended_mnist(x), 1) == y))
    adv_acc = float(np.mean(np.argmax(undefended_mnist(x_adv), 1) == y))
    assert adv_acc <= 0.2, (clean_acc, adv_acc)
    assert np.linalg.norm((x_adv - x).reshape(len(x), -1).astype(np.float64), axis=1).max() <= eps + 1e-5
    # Gaussian noise of the same L2 norm barely hurts it: the search is what breaks it.
    noise = np.random.default_rng(0).normal(size=x.shape)
    noise *= eps / np.linalg.norm(noise.reshape(len(x), -1), axis=1)[:, None, None, None]
    noisy = np.clip(x + noise, 0, 1).astype(np.float32)
    noisy_acc = float(np.mean(np.argmax(undefended_mnist(noisy), 1) == y))
    assert noisy_acc > 0.8, noisy_acc
    assert attack.queries_used.max() > 1


def test_l2_seeded(mnist_small):
    x, _ = mnist_small
    model = NumpyLinear(seed=3)
    y = model.predict(x)
    runs = []
    for seed in (7, 7, 8):
        attack = Square(model, ThreatModel("l2", 0.8), n_queries=30)
        runs.append((attack.run(x, y, seed=seed), attack.queries_used.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])
