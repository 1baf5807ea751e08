"""Section 3.3: two-stage class-conditional synthesis on a model briefly trained on real MNIST."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from nfi_tf import synthesis
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
    p = synthesis.project(x, x0, 1.5).numpy()
    assert p.min() >= 0.0 and p.max() <= 1.0
    dist = np.linalg.norm((p - x0.numpy()).reshape(16, -1), axis=1)
    assert dist.max() <= 1.5 + 1e-4


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


def test_target_share_rises_from_seed_to_final_stage(mnist_results):
    share = {s: synthesis.target_share(mnist_results, s) for s in STAGES}
    robust = {s: synthesis.target_share(mnist_results, s, "robust_part") for s in STAGES}
    assert share["stage_two"] > share["seed"], share
    assert share["stage_two"] >= 0.9, share
    # Stage one optimizes the robust part alone; that is the part that must have moved.
    assert robust["stage_one"] > robust["seed"], robust
    # ... and stage two the non-robust part alone.
    nonrobust = {s: synthesis.target_share(mnist_results, s, "nonrobust_part") for s in STAGES}
    assert nonrobust["stage_two"] > nonrobust["seed"], nonrobust
    prob = {s: synthesis.mean_target_prob(mnist_results, s) for s in STAGES}
    assert prob["stage_two"] > prob["seed"] + 0.1, prob


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
