"""What several test files share: running a command in a subprocess, the test-scale config.

Imported by tests (and the scripts under tests/scripts) only; production code never imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
FIXTURES = os.path.join(TESTS, "fixtures")
# What tests read from a trained model dir; checkpoints and TensorBoard logs are not kept.
FIXTURE_FILES = ("config.json", "model.keras", "summary.json", "history.json")


def run_cli(module: str, *args: str, timeout: float = 600, env: dict | None = None):
    """`python -m module args...` from the repo root; returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


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


def fixture_dir(method: str, seed: int) -> str:
    """Where the committed briefly trained MNIST model of `method` and `seed` lives."""
    return os.path.join(FIXTURES, f"mnist_{method}_seed{seed}")


def train_fixture(method: str, seed: int, out_dir: str) -> str:
    """Train the test-scale model (tiny_mnist_config) into `out_dir`, keeping FIXTURE_FILES."""
    from nfi_tf.training import train_and_evaluate

    with tempfile.TemporaryDirectory() as scratch:
        train_and_evaluate(tiny_mnist_config(method, train={"seed": seed}), scratch, verbose=0)
        os.makedirs(out_dir, exist_ok=True)
        for name in FIXTURE_FILES:
            shutil.copy(os.path.join(scratch, name), os.path.join(out_dir, name))
    return out_dir
