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


from helpers import tiny_mnist_config  # noqa: E402  (tests/ is on sys.path under pytest)


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
    return data.uint8_to_float(images), labels
