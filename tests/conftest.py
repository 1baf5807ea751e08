"""Shared fixtures: real data (TFDS_DATA_DIR, defaulting to ../shared/data/tfds) and small
models briefly trained on real MNIST, built once per test session."""

from __future__ import annotations

import os

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARED = os.path.normpath(os.path.join(_REPO, "..", "shared", "data", "tfds"))
if "TFDS_DATA_DIR" not in os.environ and os.path.isdir(_SHARED):
    os.environ["TFDS_DATA_DIR"] = _SHARED
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", default=False,
                     help="also run tests marked large (minutes each)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: pass --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def tiny_mnist_config(method: str = "nfi", **overrides):
    """Real MNIST at test scale: 2048 train images, 10-step PGD, 2 epochs."""
    from nfi_tf.config import make_config

    groups = {
        "data": {"train_examples": 2048, "eval_examples": 200},
        "model": {"method": method},
        "attack": {"num_steps": 10, "step_size": 0.04},
        "eval_attack": {"num_steps": 10, "step_size": 0.04},
        "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.05,
                  "lr_decay_epochs": ()},
    }
    for group, values in overrides.items():
        groups.setdefault(group, {}).update(values)
    return make_config("mnist", groups)


def _train(tmp_path_factory, name, config):
    from nfi_tf.training import train_and_evaluate

    model_dir = str(tmp_path_factory.mktemp(name))
    train_and_evaluate(config, model_dir, verbose=0)
    return model_dir


@pytest.fixture(scope="session")
def trained_mnist_dir(tmp_path_factory):
    """Model dir of an nfi SmallCNN briefly trained on real MNIST (config.json, model.keras...)."""
    return _train(tmp_path_factory, "nfi_mnist", tiny_mnist_config("nfi"))


@pytest.fixture(scope="session")
def trained_mnist_trades_dir(tmp_path_factory):
    """Model dir of a TRADES SmallCNN briefly trained on real MNIST."""
    return _train(tmp_path_factory, "trades_mnist", tiny_mnist_config("trades"))


@pytest.fixture(scope="session")
def mnist_test_arrays():
    """The first 256 real MNIST test images (float32 in [0, 1]) and labels."""
    from nfi_tf import data
    from nfi_tf.config import make_config

    images, labels = data.load_arrays(make_config("mnist").data, "test", 256)
    return images.astype("float32") / 255.0, labels
