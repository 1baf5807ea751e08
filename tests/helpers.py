"""What several test files share: running a command in a subprocess, the test-scale config.

Imported by tests (and the scripts under tests/scripts) only; production code never imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


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
