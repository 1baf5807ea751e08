"""Which counterfactual loss form is the default: a small real-MNIST sweep scored on VALIDATION data.

    TFDS_DATA_DIR=../shared/data/tfds python scripts/counterfactual_sweep.py [out_dir] [stage]

Trains a small nfi model per form (2048 MNIST training images, 2 epochs, 10-step PGD) and scores
it on 512 images held out of the train split (`validation_examples`), never on test images.
Each run records the range of the counterfactual denominator it actually divided by
(`cf_denominator`, per step). Writes results/counterfactual_sweep.json; `stage` (first,
follow_up or all, the default) runs one group of settings and keeps the other's rows.

Stage "first" is every form at the paper's weight 1. Stage "follow_up" was added after the
first collapsed every active form: the ratio multiplies the part KL's weight by 1 / denominator
(5x to 400x here), so it repeats the running form at counterfactual weight 0.1, about the whole
KL's size at this budget, which gives the ratio the plain KL's average scale.

The rule, fixed before the runs: score = mean of the trade-off head's clean and PGD accuracy
and the routed model's clean accuracy. A form is stable when it finished with a finite loss and
its trade-off head's clean accuracy is not below the no-counterfactual run's by more than two
standard errors. The default is the best-scoring stable form among the active ones (every form
but "floored", whose denominator never leaves its floor of 1, and "none").

Measured 2026-11-29: the first stage chose nothing (every active form collapsed), so the default
stayed "floored"; the follow-up's winner (`chosen_any_stage`) is reported, not adopted, because
it needs a weight and a warm-up fitted after the fact and scored within noise of floored.
"""

import json
import math
import os
import sys
import time

from nfi_tf import io_utils
from nfi_tf.config import make_config
from nfi_tf.training import train_and_evaluate

TRAIN, VALIDATION, EPOCHS, BATCH = 2048, 512, 2, 64
STEPS_PER_EPOCH = TRAIN // BATCH
BUDGET = {
    "data": {"train_examples": TRAIN, "validation_examples": VALIDATION},
    "attack": {"num_steps": 10, "step_size": 0.04},
    "eval_attack": {"num_steps": 10, "step_size": 0.04},
    "train": {"epochs": EPOCHS, "batch_size": BATCH, "learning_rate": 0.05, "lr_decay_epochs": ()},
}
# (name, loss overrides, active: the whole model's KL acts on the loss)
SETTINGS = [
    ("none (counterfactual weight 0)", {"counterfactual_weight": 0.0}, False),
    ("floored, floor 1 (old default)", {"counterfactual_loss": "floored"}, False),
    ("literal eq. 5", {"counterfactual_loss": "literal"}, True),
    ("running, decay 0.99", {"counterfactual_loss": "running"}, True),
    (f"running, decay 0.99, warm-up {STEPS_PER_EPOCH} steps",
     {"counterfactual_loss": "running", "counterfactual_warmup_steps": STEPS_PER_EPOCH}, True),
    (f"running, decay 0.99, warm-up {EPOCHS * STEPS_PER_EPOCH} steps",
     {"counterfactual_loss": "running", "counterfactual_warmup_steps": EPOCHS * STEPS_PER_EPOCH}, True),
    ("log_ratio", {"counterfactual_loss": "log_ratio"}, True),
    (f"log_ratio, warm-up {STEPS_PER_EPOCH} steps",
     {"counterfactual_loss": "log_ratio", "counterfactual_warmup_steps": STEPS_PER_EPOCH}, True),
]
FOLLOW_UP = [
    (f"running, decay 0.99, warm-up {STEPS_PER_EPOCH} steps, weight 0.1",
     {"counterfactual_loss": "running", "counterfactual_warmup_steps": STEPS_PER_EPOCH,
      "counterfactual_weight": 0.1}, True),
    ("running, decay 0.99, weight 0.1",
     {"counterfactual_loss": "running", "counterfactual_weight": 0.1}, True),
]
STAGES = {"first": SETTINGS, "follow_up": FOLLOW_UP}
SCORED = ("clean_tradeoff", "pgd_tradeoff", "clean_routed")
KEYS = SCORED + ("clean_robust_part", "pgd_robust_part", "clean_nonrobust_part",
                 "pgd_nonrobust_part", "clean_benign", "pgd_adversarial")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results",
                      "counterfactual_sweep.json")


def sweep_config(loss: dict):
    return make_config("mnist", {**BUDGET, "model": {"method": "nfi"}, "loss": loss})


def _row(name: str, loss: dict, active: bool, model_dir: str) -> dict:
    started = time.time()
    try:
        summary = train_and_evaluate(sweep_config(loss), model_dir, verbose=0)
    except Exception as e:  # a diverged setting is a result, not a crash of the sweep
        return {"setting": name, "loss": loss, "active": active, "error": str(e),
                "seconds": round(time.time() - started, 1)}
    with open(os.path.join(model_dir, "history.json")) as f:
        history = json.load(f)
    val = summary["final_validation"]
    train = [h["train"] for h in history]
    row = {"setting": name, "loss": loss, "active": active,
           "seconds": round(time.time() - started, 1),
           "validation": {k: val[k] for k in KEYS},
           "score": sum(val[k] for k in SCORED) / len(SCORED),
           # Per-epoch means of the whole model's KL (the quantity the ratio divides by).
           "whole_kl_epoch_means": [t["loss_robust_kl"] for t in train],
           "counterfactual_loss_epoch_means": [t["loss_counterfactual"] for t in train],
           "tradeoff_ce_epoch_means": [t["loss_natural"] for t in train]}
    if "cf_denominator_min" in train[0]:
        row["cf_denominator_range"] = [min(t["cf_denominator_min"] for t in train),
                                       max(t["cf_denominator_max"] for t in train)]
    return row


def choose(rows: list[dict]) -> dict:
    """The rule of the module docstring, applied to the finished rows, per stage and overall."""
    base = next(r for r in rows if r["setting"].startswith("none") and "error" not in r)
    p = base["validation"]["clean_tradeoff"]
    two_se = 2 * math.sqrt(2 * p * (1 - p) / VALIDATION)  # difference of two accuracies
    for r in rows:
        r["stable"] = ("error" not in r
                       and r["validation"]["clean_tradeoff"] >= p - two_se)

    def best(names):
        candidates = [r for r in rows if r["active"] and r["stable"] and r["setting"] in names]
        return max(candidates, key=lambda r: r["score"])["setting"] if candidates else None

    rule = __doc__.split("The rule, fixed before the runs: ")[1].split("\n\n")[0]
    return {"rule": " ".join(rule.split()),
            "two_se_clean_tradeoff": two_se,
            "chosen_first_stage": best({name for name, _, _ in SETTINGS}),
            "chosen_any_stage": best({r["setting"] for r in rows})}


def main(out_dir="/tmp/cf_sweep", stage="all"):
    if stage not in (*STAGES, "all"):
        raise SystemExit(f"stage must be first, follow_up or all. Received: stage={stage!r}")
    order = [name for name, _, _ in SETTINGS + FOLLOW_UP]
    kept = {}
    if stage != "all" and os.path.exists(RESULT):
        with open(RESULT) as f:
            kept = {r["setting"]: r for r in json.load(f)["rows"]}
    settings = SETTINGS + FOLLOW_UP if stage == "all" else STAGES[stage]
    for name, loss, active in settings:
        row = _row(name, loss, active, os.path.join(out_dir, str(order.index(name))))
        kept[name] = row
        print(json.dumps(row), flush=True)
    rows = [kept[name] for name in order if name in kept]
    first = {name for name, _, _ in SETTINGS}
    for r in rows:
        r["stage"] = "first" if r["setting"] in first else "follow_up"
    decision = choose(rows)
    print(json.dumps(decision), flush=True)
    io_utils.atomic_write_json(RESULT, {
        "command": "TFDS_DATA_DIR=../shared/data/tfds python scripts/counterfactual_sweep.py "
                   "[out_dir] [first|follow_up|all]",
        "budget": {"train_examples": TRAIN, "validation_examples": VALIDATION, "epochs": EPOCHS,
                   "batch_size": BATCH, "pgd_steps": 10, "scored_on": "validation (last "
                   f"{VALIDATION} images of the MNIST train split), never test"},
        "measured": time.strftime("%Y-%m-%d"),
        "rows": rows, **decision})
    return rows, decision


if __name__ == "__main__":
    main(*sys.argv[1:3])
