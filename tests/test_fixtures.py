"""The committed test fixtures (tests/fixtures/, made by tests/scripts/make_fixtures.py) are
what the tests' own config trains, and their weights are the ones their summary scored."""

import json
import os

import numpy as np
import pytest
from helpers import fixture_dir, tiny_mnist_config


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["nfi", "trades"])
def test_committed_fixture_matches_the_test_config_and_its_summary(method, seed):
    from nfi_tf import data, model_io
    from nfi_tf.config import Config

    model_dir = fixture_dir(method, seed)
    # A changed tiny_mnist_config makes the committed fixture stale: remake it (the script's
    # docstring has the command) rather than test one config and run another.
    assert Config.load(os.path.join(model_dir, "config.json")) == tiny_mnist_config(
        method, train={"seed": seed})
    with open(os.path.join(model_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["finished"] and summary["method"] == method
    trained = model_io.load_trained(model_dir)
    final = summary["final_test"]
    images, labels = data.load_arrays(trained.config.data, "test", final["examples"])
    out = trained.classifier(data.uint8_to_float(images), training=False)
    scored = {k[len("clean_"):]: v for k, v in final.items() if k.startswith("clean_")}
    assert scored, final
    for output, accuracy in scored.items():
        ours = float(np.mean(np.argmax(np.asarray(out[output]), axis=1) == labels))
        # The weights scored at training time on another CPU: at most one image may flip on a
        # last-bit tie of two logits.
        assert abs(ours - accuracy) <= 1.0 / final["examples"] + 1e-9, (output, ours, accuracy)
