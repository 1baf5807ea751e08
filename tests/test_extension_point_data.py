"""A data source is one module and one registration line (issue 34, "Data").

The toy source below lives in this file only: 16x16 grayscale "stripes", ten classes, the class
being which row holds a bright bar, drawn by numpy from fixed seeds. Registered with one line,
it is a `--dataset` value like any other: `make_config` derives its preset from its image shape,
`train_and_evaluate` trains on it, `nfi_tf.data.load_arrays` reads its test images.
"""

import json
import os

import numpy as np
import pytest

from nfi_tf import data, serving_examples
from nfi_tf.config import make_config
from nfi_tf.datasets import registry
from nfi_tf.datasets.array_source import ArraySource, Rows

# === The toy source (what a new source module holds) ===

NAME, SIDE, CLASSES = "toy_stripes", 16, 10
TRAIN, TEST = 320, 80


def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8, n x 16 x 16 x 1) of dim noise with a bright bar at row 3 + label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.integers(0, 64, (n, SIDE, SIDE, 1), dtype=np.uint8)
    images[np.arange(n), labels + 3] = 255
    return images, labels


def open_stripes(cfg, spec, download) -> ArraySource:
    return ArraySource(Rows.of(*stripes(TRAIN, seed=0)), Rows.of(*stripes(TEST, seed=1)),
                       class_names=tuple(f"bar{k}" for k in range(CLASSES)),
                       image_size=cfg.image_size)


STRIPES = registry.SourceSpec(
    name=NAME, form=NAME, claims=lambda dataset: dataset == NAME,
    image_shape=lambda spec, data_dir: (SIDE, SIDE, 1), open=open_stripes)


@pytest.fixture
def toy():
    with registry.registered(STRIPES):  # the one registration line
        yield STRIPES
    assert registry.parse(NAME).source.name == "tfds"  # gone again: an unknown tfds name now


# === The proof ===

def test_a_registered_source_is_a_dataset_with_a_derived_preset(toy):
    assert registry.parse(NAME).source is toy
    config = make_config(NAME, {"data": {"eval_examples": 40}})
    assert config.data.dataset == NAME
    # Grayscale and small: the MNIST-like preset (epsilon 0.3, small_cnn), from the shape only.
    assert (config.attack.epsilon, config.model.backbone) == (0.3, "small_cnn")
    info = data.load_info(config.data)
    assert (info.image_shape, info.num_classes, info.train_size, info.test_size) == \
        ((SIDE, SIDE, 1), CLASSES, TRAIN, TEST)
    assert info.class_names[7] == "bar7" and data.split_note(config.data) is None
    bigger = make_config(NAME, {"data": {"image_size": 24}})
    assert data.load_info(bigger.data).image_shape == (24, 24, 1)
    assert data.load_arrays(bigger.data, "test", 3)[0].shape == (3, 24, 24, 1)


def test_its_test_images_are_the_generators(toy):
    cfg = make_config(NAME).data
    images, labels = data.load_arrays(cfg, "test", 50)
    want_x, want_y = stripes(TEST, seed=1)
    assert images.dtype == np.uint8 and images.shape == (50, SIDE, SIDE, 1)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(images, want_x[:50])
    np.testing.assert_array_equal(labels, want_y[:50])
    # The bar is where the label says: the brightest row of each image is 3 + label.
    assert (images[..., 0].mean(axis=2).argmax(axis=1) == labels + 3).all()


def test_training_streams_every_training_image_once_per_epoch(toy):
    cfg = make_config(NAME, {"data": {"train_examples": 200, "augment": False}}).data
    stream = data.TrainStream(cfg, batch_size=64, seed=0)
    batches = list(stream.epoch(0))
    assert [len(y) for _, y in batches] == [64, 64, 64, 8]
    x = np.concatenate([np.round(b[0].numpy() * 255) for b in batches]).astype(np.uint8)
    y = np.concatenate([b[1].numpy() for b in batches])
    want_x, want_y = stripes(TRAIN, seed=0)
    order = np.random.default_rng([0, 0]).permutation(200)  # the epoch's seeded permutation
    np.testing.assert_array_equal(x, want_x[order])
    np.testing.assert_array_equal(y, want_y[order])


def test_it_trains_end_to_end(toy, tmp_path):
    from nfi_tf.training import train_and_evaluate

    config = make_config(NAME, {
        "data": {"train_examples": 128, "eval_examples": 40},
        "attack": {"num_steps": 1}, "eval_attack": {"num_steps": 2},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    model_dir = str(tmp_path / "model")
    summary = train_and_evaluate(config, model_dir, verbose=0)
    assert summary["finished"] and summary["steps"] == 2 and summary["dataset"] == NAME
    assert summary["train_examples"] == 128 and summary["test_examples"] == 40
    for name in ("model.keras", "history.json", "config.json", "summary.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    final = json.load(open(os.path.join(model_dir, "history.json")))[-1]["test"]
    scores = {k: v for k, v in final.items() if k.startswith(("clean_", "pgd_"))}
    assert final["examples"] == 40 and "clean_routed" in scores and "pgd_routed" in scores
    for name, accuracy in scores.items():  # a share of the 40 test images
        assert 0.0 <= accuracy <= 1.0 and abs(accuracy * 40 - round(accuracy * 40)) < 1e-6, name
    kept = serving_examples.load(model_dir)  # the test images kept for export parity: all 80
    want_x, want_y = stripes(TEST, seed=1)
    np.testing.assert_array_equal(kept.images, want_x)
    np.testing.assert_array_equal(kept.labels, want_y)
    assert kept.info.name == NAME and kept.info.class_names[0] == "bar0"
    assert json.load(open(os.path.join(model_dir, "config.json")))["data"]["dataset"] == NAME


def test_a_name_is_registered_once(toy):
    from nfi_tf.errors import NfiError

    with pytest.raises(NfiError, match="registered already"):
        registry.register(STRIPES)
    with pytest.raises(NfiError, match="fallback source already"):
        registry.register(registry.SourceSpec(name="other", fallback=True, open=open_stripes,
                                              image_shape=lambda spec, data_dir: (8, 8, 1)))
