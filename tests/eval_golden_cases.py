"""The fixed-seed evaluations pinned by tests/golden/ (tests/scripts/make_eval_golden.py records
them, tests/test_eval_golden.py re-runs them): 24 real MNIST test images of the committed
seed-0 fixtures, batches of 8 (so per-batch seeds matter), every attack family at a tiny budget.

    nfi_columns     the nfi model, every attack, per-attack columns on every image
    nfi_cascade     the same model and attacks, the worst case in cascade
    trades_columns  the TRADES model, every attack (no route-aware: it has no switch)
    trades_file     evaluate_classifier on the TRADES model's .keras file (recognised as an
                    nfi-tf model: its rows, AutoAttack's suite its way)
    callable        evaluate_classifier on a callable returning the TRADES model's trade-off
                    logits (a plain classifier: one row)
"""

from __future__ import annotations

import os
import platform

import numpy as np
from helpers import fixture_dir

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
EXAMPLES = 24
BUDGET = dict(eval_examples=EXAMPLES, batch_size=8, step_size=0.1, pgd_steps=3, cw_steps=3,
              apgd_steps=4, apgd_targets=2, fab_steps=4, fab_targets=2, square_queries=12,
              route_steps=3, route_targets=1, route_temperatures=(1.0,), verbose=0)
CASES = ("nfi_columns", "nfi_cascade", "trades_columns", "trades_file", "callable")


def _model_dir(method: str, scratch: str, name: str) -> str:
    import shutil

    out = os.path.join(scratch, name)
    os.makedirs(out, exist_ok=True)
    for f in ("config.json", "model.keras"):
        shutil.copy(os.path.join(fixture_dir(method, 0), f), os.path.join(out, f))
    return out


def _evaluate_dir(method: str, scratch: str, name: str, **extra):
    from nfi_tf.evaluation.config import EvalConfig
    from nfi_tf.evaluation.runner import evaluate_model

    cfg = EvalConfig(model_dir=_model_dir(method, scratch, name), **BUDGET, **extra)
    return evaluate_model(cfg, log=lambda m: None)


def _classifier(scratch: str, plain: bool):
    import nfi_tf
    from nfi_tf import data
    from nfi_tf.config import make_config

    images, labels = data.load_arrays(make_config("mnist").data, "test", EXAMPLES)
    path = os.path.join(fixture_dir("trades", 0), "model.keras")
    budget = {k: v for k, v in BUDGET.items()
              if k not in ("eval_examples", "route_steps", "route_targets", "route_temperatures",
                           "step_size", "pgd_steps", "cw_steps")}
    model = path
    if plain:
        keras_model = nfi_tf.load_model(path)
        model = lambda z: keras_model(z, training=False)["tradeoff"]  # noqa: E731
    return nfi_tf.evaluate_classifier(model, images, labels, epsilon=0.3, output="tradeoff",
                                      out_dir=os.path.join(scratch, f"classifier_{plain}"), **budget)


def run(name: str, scratch: str) -> dict:
    """One case: its table and per-example results as plain JSON values."""
    if name == "nfi_columns":
        result = _evaluate_dir("nfi", scratch, name)
    elif name == "nfi_cascade":
        result = _evaluate_dir("nfi", scratch, name, cascade=True)
    elif name == "trades_columns":
        result = _evaluate_dir("trades", scratch, name)
    elif name in ("trades_file", "callable"):
        result = _classifier(scratch, plain=name == "callable")
    else:
        raise ValueError(f"unknown case {name!r}")
    report = result.report
    return {"table": report.table, "columns": list(report.columns), "rows": list(report.rows),
            "labels": "".join(map(str, np.asarray(result.labels).tolist())),
            "correct": {row: {str(k): "".join("1" if c else "0" for c in v)
                              for k, v in sorted(by.items(), key=lambda kv: str(kv[0]))}
                        for row, by in result.correct.items()}}


def environment() -> dict:
    """What the last bits of the numbers depend on: the kernel set and the CPU's extensions."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    extensions = sorted(x for x in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
                        if f" {x}" in flags)
    # nfi_tf (imported first) sets the variable on x86-64 unless the user did.
    return {"onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0").strip().lower() in ("1", "true"),
            "machine": platform.machine(), "extensions": extensions,
            "intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS")}
