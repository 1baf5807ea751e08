"""What the reproduction runner does to one run of a plan: train, evaluate and keep, check, synthesize.

Each step is done once and reused after, so a plan stopped part-way resumes where it stopped:

    train_one          `nfi_tf.training.train_and_evaluate` into <work_dir>/<dataset>/<run>
                       (checkpoints, never in git); reproduce_train.json records the time, the
                       steps and the machine's load. Reused when that record is there and the
                       model dir's config.json is the run's config.
    run_one            train, then `python -m nfi_tf.evaluate` (the command a user runs); the small
                       outputs (config, summary, history, eval.json/eval.md/eval.npz, PNG figures)
                       and run.json are kept under <results_dir>/<dataset>/<run>. Reused when the
                       kept run is `finished`: the same config, evaluated with the same flags.
    independent_check  scripts/independent_attack.py (an attack outside the project's attack
                       code) on the trained model: independent_attack.json beside the kept run.
    synthesize         `python -m nfi_tf.generate` (two-stage synthesis, every class) from the
                       plan's synthesis run.

The files' formats (run.json, reproduce_train.json) are what finished runs hold; a runner that
changed them would train those runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from nfi_tf import io_utils
from nfi_tf.config import Config
from nfi_tf.experiments.load_sampler import LoadSampler
from nfi_tf.experiments.reproduction import (
    INDEPENDENT_FILE,
    QUICK_INDEPENDENT_ARGS,
    QUICK_SYNTHESIS_ARGS,
    SYNTHESIS_ARGS,
)
from nfi_tf.experiments.runs import Run

# The checkout the runner works in: its commands run there, its default directories are there.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_RECORD = "reproduce_train.json"
RUN_RECORD = "run.json"
# The files a kept run holds (eval.npz: the per-example records the paired tests read).
_KEPT_SUFFIXES = (".json", ".md", ".png", ".npz")
# The model's own inputs, not a result of the run (a few test images for export parity, 0.7 MB on
# CIFAR-10): it stays in the model dir beside model.keras.
_NOT_KEPT = ("serving_examples.npz",)


def model_dir(work_dir: str, run: Run) -> str:
    return os.path.join(work_dir, run.dataset, run.name)


def kept_dir(results_dir: str, run: Run) -> str:
    return os.path.join(results_dir, run.dataset, run.name)


def _say(run: Run, what: str) -> None:
    print(f"[reproduce] {run.dataset}/{run.name}: {what}", flush=True)


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def same_config(path: str, config: Config) -> bool:
    try:
        return Config.load(path) == config
    except Exception:  # missing, unreadable or from an older config: not this run's
        return False


def train_one(run: Run, work_dir: str) -> dict:
    """Train (or resume, or reuse) one run; returns its reproduce_train.json record."""
    out = model_dir(work_dir, run)
    record_path = os.path.join(out, TRAIN_RECORD)
    if os.path.exists(record_path) and same_config(os.path.join(out, "config.json"), run.config):
        return _read_json(record_path)
    from nfi_tf.training import train_and_evaluate  # TensorFlow only when something trains

    _say(run, "training")
    started = time.time()
    with LoadSampler() as load:
        summary = train_and_evaluate(run.config, out, verbose=0)
    # After a kill, a resumed run counts only the time since the resume (stated in RESULTS.md).
    record = {"train_seconds": round(time.time() - started, 1), "steps": summary["steps"],
              "final_test_transfer_pgd": summary["final_test"], "load": load.summary()}
    io_utils.atomic_write_json(record_path, record)
    _say(run, f"trained in {record['train_seconds']:.0f} s")
    return record


def finished(keep: str, run: Run) -> bool:
    """A run kept under `keep` made from this config and evaluated with these flags (in any
    order)."""
    if not (os.path.exists(os.path.join(keep, RUN_RECORD))
            and same_config(os.path.join(keep, "config.json"), run.config)):
        return False
    kept = _read_json(os.path.join(keep, RUN_RECORD)).get("eval_args")
    return kept is not None and sorted(kept) == sorted(run.eval.flags())


def _evaluate(run: Run, work_dir: str) -> float:
    """`python -m nfi_tf.evaluate` on the trained run; returns its seconds."""
    _say(run, f"evaluating ({run.eval.examples} test images)")
    started = time.time()
    cmd = [sys.executable, "-m", "nfi_tf.evaluate", f"--model_dir={model_dir(work_dir, run)}",
           f"--eval_examples={run.eval.examples}", *run.eval.flags()]
    subprocess.run(cmd, cwd=REPO, check=True)
    return time.time() - started


def _keep(run: Run, work_dir: str, keep: str) -> None:
    """Copy the model dir's small outputs to `keep`."""
    os.makedirs(keep, exist_ok=True)
    stale = os.path.join(keep, INDEPENDENT_FILE)  # it checked the model this run replaces
    if os.path.exists(stale):
        os.remove(stale)
    source = model_dir(work_dir, run)
    for f in sorted(os.listdir(source)):
        if f.endswith(_KEPT_SUFFIXES) and f not in _NOT_KEPT:
            shutil.copy2(os.path.join(source, f), os.path.join(keep, f))


def run_one(run: Run, work_dir: str, results_dir: str) -> dict:
    """Train and evaluate one run, keep its small outputs; returns its run.json record."""
    keep = kept_dir(results_dir, run)
    if finished(keep, run):
        _say(run, f"reusing finished run in {keep}")
        return _read_json(os.path.join(keep, RUN_RECORD))
    trained = train_one(run, work_dir)
    eval_seconds = _evaluate(run, work_dir)
    _keep(run, work_dir, keep)
    record = {"dataset": run.dataset, "run": run.name, "train_seconds": trained["train_seconds"],
              "eval_seconds": round(eval_seconds, 1), "steps": trained["steps"],
              "eval_examples": run.eval.examples, "eval_args": run.eval.flags()}
    io_utils.atomic_write_json(os.path.join(keep, RUN_RECORD), record)
    return record


def independent_check(run: Run, work_dir: str, results_dir: str, quick: bool) -> str:
    """Run the independent attack on one finished run (once; reused after)."""
    out = os.path.join(kept_dir(results_dir, run), INDEPENDENT_FILE)
    if os.path.exists(out):
        return out
    cmd = [sys.executable, os.path.join(REPO, "scripts", "independent_attack.py"),
           f"--model_dir={model_dir(work_dir, run)}", f"--examples={run.eval.examples}",
           f"--out={out}", *(QUICK_INDEPENDENT_ARGS if quick else [])]
    _say(run, "independent attack")
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def synthesize(run: Run, work_dir: str, results_dir: str, quick: bool) -> str:
    """Run `python -m nfi_tf.generate` from one run, every class (once; reused after)."""
    out = os.path.join(kept_dir(results_dir, run), "synthesis")
    if os.path.exists(os.path.join(out, "summary.json")):
        return out
    classes = ",".join(str(c) for c in range(10))
    cmd = [sys.executable, "-m", "nfi_tf.generate", f"--model_dir={model_dir(work_dir, run)}",
           f"--classes={classes}", f"--out={out}",
           *(QUICK_SYNTHESIS_ARGS if quick else SYNTHESIS_ARGS)]
    _say(run, "synthesis")
    subprocess.run(cmd, cwd=REPO, check=True)
    return out
