"""Run by tests/test_reliability.py in a fresh process (logical devices must be set up before
TensorFlow initializes): the same training steps on one device and on MirroredStrategy over two
logical CPU devices; prints the max abs weight difference as JSON."""

import json
import sys

from nfi_tf.distribute import split_cpu

split_cpu(2)

import importlib.util  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

# tests/helpers.py, loaded from its file (argv[2] is the tests folder), not put on sys.path.
_spec = importlib.util.spec_from_file_location("helpers", os.path.join(sys.argv[2], "helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

from nfi_tf.training import train_and_evaluate  # noqa: E402


def weights_after(strategy, model_dir):
    import keras

    config = helpers.tiny_mnist_config(
        "nfi", data={"train_examples": 256}, model={"dropout": 0.0},
        train={"strategy": strategy, "epochs": 1, "batch_size": 64})
    train_and_evaluate(config, model_dir, verbose=0)
    model = keras.models.load_model(f"{model_dir}/model.keras")
    return [np.asarray(v) for v in model.weights]


one = weights_after("default", sys.argv[1] + "/one")
two = weights_after("mirrored", sys.argv[1] + "/two")
init_scale = max(float(np.abs(a).max()) for a in one)
print(json.dumps({"max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
                  "max_abs_weight": init_scale, "n": len(one)}))
