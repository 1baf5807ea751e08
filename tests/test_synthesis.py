"""Section 3.3: two-stage class-conditional synthesis on a model briefly trained on real MNIST."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from nfi_tf import synthesis
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.errors import NfiError
from nfi_tf.synthesis import STAGES, SynthesisConfig

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_NAMES = tuple(str(i) for i in range(10))
RADIUS = 7.0
FIT_EXAMPLES = 3000


# === Pure parts: class names, seeds, projection ===


def test_resolve_classes_names_indices_and_order():
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog")
    assert synthesis.resolve_classes(["dog", "Cat", "0", 5], names) == [5, 3, 0]


def test_unknown_class_names_the_bad_value():
    with pytest.raises(NfiError, match="Received: classes='zebra'"):
        synthesis.resolve_classes(["cat", "zebra"], ("cat", "dog"))
    with pytest.raises(NfiError, match="Received: classes='10'"):
        synthesis.resolve_classes(["10"], MNIST_NAMES)


@pytest.mark.parametrize("field,value", [("per_class", 0), ("radius", -1.0), ("steps", -1),
                                         ("step_size", 0.0), ("classes", ())])
def test_bad_settings_are_errors(field, value):
    config = SynthesisConfig(**{"classes": ("3",), field: value})
    with pytest.raises(NfiError, match=field):
        synthesis.validate(config)


def test_default_radius_and_step_scale_with_the_image():
    config = SynthesisConfig(classes=("1",), steps=50)
    assert config.resolved_radius((28, 28, 1)) == pytest.approx(7.0)
    assert config.resolved_step_size((28, 28, 1)) == pytest.approx(0.35)


def test_gaussian_seeds_in_box_and_reproducible():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, size=(50, 6, 6, 1)) * np.linspace(0.5, 1, 36).reshape(6, 6, 1)
    g = synthesis.fit_gaussian(images, components=4)
    # Low rank plus isotropic: the variance along the first direction is the top eigenvalue.
    centered = images.reshape(50, -1) - images.reshape(50, -1).mean(0)
    top = np.linalg.eigvalsh(np.cov(centered, rowvar=False))[-1]
    assert g.scales[0] ** 2 + g.noise_std ** 2 == pytest.approx(top)
    a = synthesis.draw_seeds(g, 5, seed=1, class_index=3)
    b = synthesis.draw_seeds(g, 5, seed=1, class_index=3)
    c = synthesis.draw_seeds(g, 5, seed=2, class_index=3)
    assert a.shape == (5, 6, 6, 1) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_projection_stays_in_ball_and_box():
    rng = np.random.default_rng(0)
    x0 = tf.constant(rng.uniform(0, 1, (16, 8, 8, 3)), tf.float32)
    x = x0 + tf.constant(rng.normal(0, 2, (16, 8, 8, 3)), tf.float32)
    p = ThreatModel("l2", 1.5).project(x, x0).numpy()  # the ball synthesis descends in
    assert p.min() >= 0.0 and p.max() <= 1.0
    dist = np.linalg.norm((p - x0.numpy()).reshape(16, -1), axis=1)
    assert dist.max() <= 1.5 + 1e-4


# === The stages' mechanism, on a hand-built model with known weights ===


class LinearParts:
    """A classifier with known weights: robust_part = x.A, nonrobust_part = x.B, routed = the
    sum. Each part's CE gradient has a closed form, and changing one part's weights cannot
    change what the other part's stage does."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a, self.b = tf.constant(a, tf.float32), tf.constant(b, tf.float32)

    def __call__(self, x, training=False):
        flat = tf.reshape(x, (tf.shape(x)[0], -1))
        robust, nonrobust = flat @ self.a, flat @ self.b
        return {"robust_part": robust, "nonrobust_part": nonrobust, "routed": robust + nonrobust}


def _weights(seed, shape=(4, 4, 1), classes=3, scale=0.5):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(int(np.prod(shape)), classes))).astype(np.float32)


def test_one_step_moves_along_the_optimized_parts_normalized_gradient_alone():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0.4, 0.6, (6, 4, 4, 1)).astype(np.float32)  # inside the box: no clipping
    target = np.array([0, 1, 2, 0, 1, 2], np.int32)
    a, b = _weights(1), _weights(2)
    model = LinearParts(a, b)
    for stage, part in (("stage_one", a), ("stage_two", b)):
        got = synthesis.make_descent(model, synthesis.STAGE_OUTPUTS[stage], radius=1.0, steps=1,
                                     step_size=0.05)(x0, x0, target)
        # d CE(y) / dx of linear logits x.W is W (softmax(x.W) - onehot(y)).
        logits = x0.reshape(6, -1) @ part
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - np.eye(3)[target]) @ part.T
        expected = x0.reshape(6, -1) - 0.05 * grad / np.linalg.norm(grad, axis=1, keepdims=True)
        np.testing.assert_allclose(got.reshape(6, -1), expected, atol=1e-6)


def test_each_stage_ignores_the_other_parts_weights():
    rng = np.random.default_rng(1)
    x0 = rng.uniform(0, 1, (6, 4, 4, 1)).astype(np.float32)
    target = np.array([0, 1, 2, 0, 1, 2], np.int32)
    a, b = _weights(1), _weights(2)
    for stage, changed in (("stage_one", LinearParts(a, _weights(3))),
                           ("stage_two", LinearParts(_weights(4), b))):
        output = synthesis.STAGE_OUTPUTS[stage]
        runs = [synthesis.make_descent(m, output, 1.0, 10, 0.1)(x0, x0, target)
                for m in (LinearParts(a, b), changed)]
        np.testing.assert_array_equal(runs[0], runs[1])
        assert np.abs(runs[0] - x0).max() > 0.01  # it did move


def test_synthesis_raises_each_stages_own_part_towards_the_target():
    rng = np.random.default_rng(2)
    classes = 3
    pool = rng.uniform(0.2, 0.8, (60, 4, 4, 1)).astype(np.float32)
    labels = np.repeat(np.arange(classes), 20)
    model = LinearParts(_weights(5), _weights(6))
    config = SynthesisConfig(classes=(0, 1, 2), per_class=4, radius=1.0, steps=20, step_size=0.05,
                             components=2, fit_examples=60)
    results = synthesis.synthesize(model, pool, labels, ("a", "b", "c"), config)

    def probs(stage, output):
        return np.array([q for r in results for q in r.predictions[stage][output]["target_prob"]])

    # Small steps on a convex CE: every image's own part gains target probability at its stage.
    assert np.all(probs("stage_one", "robust_part") > probs("seed", "robust_part"))
    assert np.all(probs("stage_two", "nonrobust_part") > probs("stage_one", "nonrobust_part"))


# === On the briefly trained real-MNIST model ===


@pytest.fixture(scope="module")
def mnist_model_and_data(trained_mnist_dir):
    from nfi_tf import data, model_io

    trained = model_io.load_trained(trained_mnist_dir)
    images, labels = data.load_arrays(trained.config.data, "train", FIT_EXAMPLES)
    return trained, data.uint8_to_float(images), labels


def _synth(model_and_data, **kw):
    trained, images, labels = model_and_data
    config = SynthesisConfig(**{"classes": tuple(range(10)), "per_class": 5, "radius": RADIUS,
                                "steps": 25, "seed": 0, "components": 16,
                                "fit_examples": FIT_EXAMPLES} | kw)
    return synthesis.synthesize(trained.classifier, images, labels, trained.info.class_names, config)


@pytest.fixture(scope="module")
def mnist_results(mnist_model_and_data):
    return _synth(mnist_model_and_data)


def test_images_in_box_and_in_ball_of_the_seed(mnist_results):
    for r in mnist_results:
        x0 = r.images["seed"]
        assert x0.shape == (5, 28, 28, 1)
        for stage in STAGES:
            x = r.images[stage]
            assert x.min() >= 0.0 and x.max() <= 1.0, stage
            dist = np.linalg.norm((x - x0).reshape(len(x), -1), axis=1)
            assert dist.max() <= RADIUS + 1e-4, (stage, dist.max())


def test_each_stage_raises_its_own_parts_target_probability(mnist_results):
    """What the stages optimize, on the real model: stage one the robust part's CE, stage two
    the non-robust part's (the mechanism itself is tested exactly on LinearParts above).

    Not asserted: that the routed output's target share rises from seed to stage two. On the
    seed-0 fixture it falls in stage two (0.92 seed, 0.98 stage one, 0.84 stage two), where a
    model trained with oneDNN's kernels gave 1.0 / 1.0 / 0.98: a property of the weights, not of
    the method (RESULTS.md, "Synthesis on the test fixture").
    """
    robust = {s: synthesis.mean_target_prob(mnist_results, s, "robust_part") for s in STAGES}
    nonrobust = {s: synthesis.mean_target_prob(mnist_results, s, "nonrobust_part") for s in STAGES}
    # Margins: seed 0 moves the robust part 0.23 -> 0.45 and the non-robust part 0.195 -> 0.211
    # (identical to 3 decimals with oneDNN's kernels and with one thread).
    assert robust["stage_one"] > robust["seed"] + 0.1, robust
    assert nonrobust["stage_two"] > nonrobust["stage_one"], nonrobust


def test_same_seed_same_images(mnist_model_and_data, mnist_results):
    again = _synth(mnist_model_and_data, classes=(7,))
    first = next(r for r in mnist_results if r.class_index == 7)
    for stage in STAGES:
        np.testing.assert_array_equal(again[0].images[stage], first.images[stage])
    other = _synth(mnist_model_and_data, classes=(7,), seed=1, steps=0)
    assert not np.array_equal(other[0].images["seed"], first.images["seed"])


def test_reports_and_pictures(mnist_results, tmp_path):
    summary = synthesis.write_outputs(mnist_results[:2], str(tmp_path), MNIST_NAMES, {"x": 1})
    assert sorted(os.listdir(tmp_path)) == ["class0.json", "class0.png", "class1.json",
                                            "class1.png", "overview.png", "summary.json"]
    report = json.loads((tmp_path / "class1.json").read_text())
    img = report["images"][0]
    assert set(img) == {"seed", "stage_one", "stage_two", "l2_from_seed"}
    assert set(img["stage_two"]) == {"routed", "robust_part", "nonrobust_part"}
    assert 0.0 <= img["stage_two"]["routed"]["confidence"] <= 1.0
    assert summary["target_share"]["seed"]["routed"] == synthesis.target_share(mnist_results[:2], "seed")
    from PIL import Image

    grid = Image.open(tmp_path / "class1.png")
    assert grid.size == (2 + 5 * (56 + 2), 2 + 3 * (56 + 2))  # 3 rows x per_class, 2x scale


# === The command line ===


def _cli(*args):
    return run_cli("nfi_tf.generate", *args, timeout=300,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))


@pytest.mark.large
def test_cli_writes_png_and_json(trained_mnist_dir, tmp_path):
    out = tmp_path / "gen"
    r = _cli(f"--model_dir={trained_mnist_dir}", "--classes=3,seven", f"--out={out}", "--per_class=2",
             "--steps=3", "--fit_examples=1000")
    # "seven" is not an MNIST class name: exit 2, one line naming it.
    assert r.returncode == 2, r.stderr[-2000:]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("nfi_tf.generate: error:")]
    assert len(errors) == 1 and "classes='seven'" in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not out.exists()

    r = _cli(f"--model_dir={trained_mnist_dir}", "--classes=3,7", f"--out={out}", "--per_class=2",
             "--steps=3", "--fit_examples=1000", "--seed=5")
    assert r.returncode == 0, r.stderr[-2000:]
    assert {"class3.png", "class3.json", "class7.png", "class7.json", "overview.png",
            "summary.json"} <= set(os.listdir(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["seed"] == 5 and summary["classes"] == ["3", "7"]
    assert len(json.loads((out / "class7.json").read_text())["images"]) == 2
