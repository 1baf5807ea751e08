"""`python -m bench --suite=whole_test_set --model_dir=DIR`: what a whole test set costs.

On one trained model (BENCHMARKS.md, "The whole test set"):

1. the cost per image of the quickstart's evaluation (its attacks, budget and cascade: the
   run QUICKSTART of nfi_tf/experiments/runs.py) and of AutoAttack's standard version against the
   routed model, each on the first 200 test images (one batch);
2. the wall time of a slice of the test set (`--images`, default the first 1,000, batches of
   `--batch_size`) evaluated the quickstart's way in one process, then with the local sharded
   recipe (scripts/evaluate_shards.sh, `--workers` processes sharing the cores), and whether the
   gathered report equals the one-process one (it must, image for image).

Every evaluation is the user's command (`python -m nfi_tf.evaluate`) in a subprocess, on a copy
of the model dir; the load average before each measurement is recorded (run it on idle cores).
The results go to `--out` (default bench/whole_test_set.json).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from nfi_tf import io_utils
from nfi_tf.evaluation.vocab import Column
from nfi_tf.experiments.runs import QUICKSTART
from nfi_tf.outputs import ROUTED

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_IMAGE = 200  # the images the per-image costs are measured on (one batch)
STANDARD = ["--attacks=clean,autoattack", f"--attack_outputs={ROUTED}"]  # AutoAttack's standard budget


def quickstart_flags() -> list[str]:
    """The quickstart's evaluation flags but the image count (and quiet)."""
    return QUICKSTART.eval.flags() + ["--verbose=0"]


def _copy(model_dir: str, work: str, name: str) -> str:
    out = os.path.join(work, name)
    os.makedirs(out)
    for f in ("config.json", "model.keras"):
        shutil.copy(os.path.join(model_dir, f), os.path.join(out, f))
    return out


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {done.stderr.strip().splitlines()[-1:]}")
    return round(time.perf_counter() - started, 1)


def _report(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "eval.json")) as f:
        return json.load(f)


def _same_images(a: str, b: str) -> bool:
    with np.load(os.path.join(a, "eval.npz")) as x, np.load(os.path.join(b, "eval.npz")) as y:
        return sorted(x.files) == sorted(y.files) and all(
            np.array_equal(x[k], y[k]) for k in x.files if k.startswith("correct|"))


def run_suite(config, log=print) -> dict:
    evaluate = [sys.executable, "-m", "nfi_tf.evaluate"]
    load = lambda: " ".join(f"{v:.2f}" for v in os.getloadavg())  # noqa: E731
    out, loads = {"per_image_seconds": {}, "load_before": {}}, {}
    with tempfile.TemporaryDirectory() as work:
        for name, flags in (("quickstart_evaluation", quickstart_flags()),
                            ("autoattack_standard_routed", STANDARD + ["--verbose=0"])):
            d, loads[name] = _copy(config.model_dir, work, name), load()
            _timed(evaluate + [f"--model_dir={d}", f"--eval_examples={PER_IMAGE}",
                               f"--batch_size={PER_IMAGE}"] + flags)
            out["per_image_seconds"][name] = _report(d)["seconds"] / PER_IMAGE
        slice_flags = [f"--eval_examples={config.images}", f"--batch_size={config.batch_size}"]
        one, loads["one_process"] = _copy(config.model_dir, work, "one"), load()
        t1 = _timed(evaluate + [f"--model_dir={one}"] + slice_flags + quickstart_flags())
        many, loads["sharded"] = _copy(config.model_dir, work, "many"), load()
        tn = _timed(["bash", os.path.join(REPO, "scripts", "evaluate_shards.sh"), str(config.workers),
                     f"--model_dir={many}"] + slice_flags + quickstart_flags())
        out["slice"] = {"images": config.images, "batch_size": config.batch_size,
                        "one_process_seconds": t1, "workers": config.workers, "sharded_wall_seconds": tn,
                        "gathered_equals_one_process": _report(one)["table"] == _report(many)["table"]
                        and _same_images(one, many),
                        "worst_case_routed": _report(one)["table"][ROUTED][Column.WORST_CASE]}
    out["load_before"] = loads
    io_utils.atomic_write_json(config.out, out)
    log(json.dumps(out, indent=1))
    return out
