"""Why --counterfactual_floor defaults to 1: the tiny real-MNIST sweep behind that choice.

    TFDS_DATA_DIR=../shared/data/tfds python scripts/counterfactual_floor_sweep.py

Trains a small nfi model (2048 real MNIST images, 2 epochs, 10-step PGD) with several
counterfactual settings and prints test accuracies of each output; writes
results/counterfactual_floor_sweep.json.
"""

import json
import os
import sys

from nfi_tf.config import make_config
from nfi_tf.training import train_and_evaluate

# The sweep's budget: 2048 real MNIST training images, 2 epochs, 10-step PGD.
BUDGET = {
    "data": {"train_examples": 2048, "eval_examples": 200},
    "attack": {"num_steps": 10, "step_size": 0.04},
    "eval_attack": {"num_steps": 10, "step_size": 0.04},
    "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.05, "lr_decay_epochs": ()},
}


def sweep_config(loss: dict):
    return make_config("mnist", {**BUDGET, "model": {"method": "nfi"}, "loss": loss})

SETTINGS = [
    ("no counterfactual loss", {"counterfactual_weight": 0.0}),
    ("relative, floor 1e-8 (bare)", {"counterfactual_floor": 0.0}),
    ("relative, floor 0.01", {"counterfactual_floor": 0.01}),
    ("relative, floor 0.1", {"counterfactual_floor": 0.1}),
    ("relative, floor 1 (default)", {"counterfactual_floor": 1.0}),
    ("literal eq. 5", {"counterfactual_loss": "literal"}),
]
KEYS = ("clean_tradeoff", "pgd_tradeoff", "clean_routed", "clean_benign", "clean_robust_part",
        "clean_nonrobust_part")


RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results",
                      "counterfactual_floor_sweep.json")


def main(out_dir="/tmp/cf_floor_sweep"):
    rows = []
    for i, (name, loss) in enumerate(SETTINGS):
        try:
            s = train_and_evaluate(sweep_config(loss),
                                   os.path.join(out_dir, str(i)), verbose=0)
            row = {"setting": name, **{k: s["final_test"][k] for k in KEYS}}
        except Exception as e:  # a diverged setting is a result, not a crash of the sweep
            row = {"setting": name, "error": str(e)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    from nfi_tf import io_utils

    io_utils.atomic_write_json(RESULT, {"command": "python scripts/counterfactual_floor_sweep.py",
                                        "test_examples": 200, "rows": rows})
    return rows


if __name__ == "__main__":
    main(*sys.argv[1:])
