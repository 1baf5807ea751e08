"""Shared fixtures: real data (TFDS_DATA_DIR, defaulting to ../shared/data/tfds) and small
models briefly trained on real MNIST.

The trained models are committed under tests/fixtures/ (made by tests/scripts/make_fixtures.py):
a model trained during the session would get weights that depend on the CPU's kernels and
thread count, and with them every empirical property a test asserts on it. Two switches, read
here only (scripts/run_tests.sh --numeric-paths sets them):
- NFI_TEST_FIXTURE_SEED (default 0): which committed seed the fixtures use (0 or 1);
- NFI_TEST_FIXTURES=train: train the fixtures in the session instead, from the same config and
  seed (about 1 min each on 2 cores), to check the tests on weights made by this CPU.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARED = os.path.normpath(os.path.join(_REPO, "..", "shared", "data", "tfds"))
if "TFDS_DATA_DIR" not in os.environ and os.path.isdir(_SHARED):
    os.environ["TFDS_DATA_DIR"] = _SHARED
# The memory-mapped copies of MNIST/CIFAR-10 (nfi_tf/datasets/cache.py) go to a session
# directory, never to ~/.cache; subprocesses inherit it. A directory given is kept.
if "NFI_TF_CACHE_DIR" not in os.environ:
    os.environ["NFI_TF_CACHE_DIR"] = tempfile.mkdtemp(prefix="nfi_tf_cache_")
    atexit.register(shutil.rmtree, os.environ["NFI_TF_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Before anything imports TensorFlow: the package's kernel choice (nfi_tf/cpu_kernels.py) is
# what users get, so it is what the tests run (TF_ENABLE_ONEDNN_OPTS still overrides it). An
# import_module call, so that sorting the imports cannot move it after helpers (which loads TF).
importlib.import_module("nfi_tf")

import helpers  # noqa: E402  (tests/ is on sys.path under pytest)

FIXTURE_MODES = ("committed", "train")


def fixture_settings() -> tuple[str, int]:
    """(mode, seed) of the session's trained-model fixtures, from the environment."""
    mode = os.environ.get("NFI_TEST_FIXTURES", "committed")
    seed = os.environ.get("NFI_TEST_FIXTURE_SEED", "0")
    if mode not in FIXTURE_MODES or not seed.isdigit():
        raise pytest.UsageError(f"NFI_TEST_FIXTURES must be one of {FIXTURE_MODES} and "
                                f"NFI_TEST_FIXTURE_SEED a whole number. Received: "
                                f"NFI_TEST_FIXTURES={mode!r}, NFI_TEST_FIXTURE_SEED={seed!r}")
    return mode, int(seed)


def pytest_report_header(config):
    """The numeric path of this run, so a failure report says which one it came from."""
    mode, seed = fixture_settings()
    path = ", ".join(f"{k}={os.environ.get(k, 'unset')}"
                     for k in ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS"))
    return f"nfi-tf fixtures: {mode}, seed {seed}; numerics: {path}"


def _trained(tmp_path_factory, method: str) -> str:
    mode, seed = fixture_settings()
    model_dir = str(tmp_path_factory.mktemp(f"{method}_mnist"))
    if mode == "train":
        return helpers.train_fixture(method, seed, model_dir)
    source = helpers.fixture_dir(method, seed)
    if not os.path.exists(os.path.join(source, "model.keras")):
        pytest.fail(f"no committed fixture {source}: make it with `python tests/scripts/"
                    f"make_fixtures.py --seeds={seed}` or set NFI_TEST_FIXTURES=train", pytrace=False)
    # A copy: tests write exports and reports into model dirs, never into the repository.
    shutil.copytree(source, model_dir, dirs_exist_ok=True)
    return model_dir


@pytest.fixture(scope="session")
def trained_mnist_dir(tmp_path_factory):
    """Model dir of an nfi SmallCNN briefly trained on real MNIST (config.json, model.keras...)."""
    return _trained(tmp_path_factory, "nfi")


@pytest.fixture(scope="session")
def trained_mnist_trades_dir(tmp_path_factory):
    """Model dir of a TRADES SmallCNN briefly trained on real MNIST."""
    return _trained(tmp_path_factory, "trades")


@pytest.fixture(scope="session")
def mnist_test_arrays():
    """The first 256 real MNIST test images (float32 in [0, 1]) and labels."""
    from nfi_tf import data
    from nfi_tf.config import make_config

    images, labels = data.load_arrays(make_config("mnist").data, "test", 256)
    return data.uint8_to_float(images), labels
