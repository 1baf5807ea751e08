"""Reproduce the paper's claims at CPU scale on real data: train, evaluate, tabulate.

    bash scripts/reproduce.sh            # the full plan (hours on 2 CPU cores)
    bash scripts/reproduce.sh --quick    # the same pipeline on a tiny budget (minutes)

The plan (datasets, runs, seeds, budgets) is data in nfi_tf/experiments/reproduction.py. For
each run: train with `nfi_tf.training.train_and_evaluate` (checkpoints under --work_dir, never
in git), evaluate with `python -m nfi_tf.evaluate` (the same command a user runs), and keep the
small outputs (config, summary, history, eval.json/eval.md, PNG figures) under
--results_dir/<dataset>/<run>/. A run whose results are already there, made from the same
config and evaluated with the same flags, is reused. Finally `results_table.md` gathers every
run's numbers side by side with the paper's Table 1 and Table 2, with the claims' verdicts
(nfi_tf/experiments/claims.py, tables.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

from nfi_tf import io_utils
from nfi_tf.config import Config
from nfi_tf.experiments import claims, scale_trend, tables
from nfi_tf.experiments.reproduction import (
    INDEPENDENT_FILE,
    QUICK_INDEPENDENT_ARGS,
    QUICK_SYNTHESIS_ARGS,
    SYNTHESIS_ARGS,
    SYNTHESIS_RUN,
    plan,
)
from nfi_tf.experiments.runs import Run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _same_config(path: str, config: Config) -> bool:
    try:
        return Config.load(path) == config
    except Exception:
        return False


TRAIN_RECORD = "reproduce_train.json"


class LoadSampler:
    """The machine's 1-minute load average sampled every 30 s while a run trains, so a training
    time is read with the load it ran under (other work on the cores slows it)."""

    def __init__(self, every: float = 30.0):
        import threading

        self._every, self._samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(self._every):
            self._samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        s = self._samples or [os.getloadavg()[0]]
        return {"samples": len(s), "mean_1min": round(sum(s) / len(s), 2),
                "max_1min": round(max(s), 2), "cpus": os.cpu_count()}


def train_one(run: Run, work_dir: str) -> dict:
    """Train (or resume, or reuse) one run; returns {train_seconds, steps}."""
    model_dir = os.path.join(work_dir, run.dataset, run.name)
    record_path = os.path.join(model_dir, TRAIN_RECORD)
    if os.path.exists(record_path) and _same_config(os.path.join(model_dir, "config.json"), run.config):
        return json.load(open(record_path))
    from nfi_tf.training import train_and_evaluate

    print(f"[reproduce] {run.dataset}/{run.name}: training", flush=True)
    started = time.time()
    with LoadSampler() as load:
        summary = train_and_evaluate(run.config, model_dir, verbose=0)
    # After a kill, a resumed run counts only the time since the resume (stated in RESULTS.md).
    record = {"train_seconds": round(time.time() - started, 1), "steps": summary["steps"],
              "final_test_transfer_pgd": summary["final_test"], "load": load.summary()}
    io_utils.atomic_write_json(record_path, record)
    print(f"[reproduce] {run.dataset}/{run.name}: trained in {record['train_seconds']:.0f} s", flush=True)
    return record


def _finished(keep: str, run: Run) -> bool:
    """A run kept under results/ made from this config and evaluated with these flags (in any
    order)."""
    if not (os.path.exists(os.path.join(keep, "run.json"))
            and _same_config(os.path.join(keep, "config.json"), run.config)):
        return False
    kept = json.load(open(os.path.join(keep, "run.json"))).get("eval_args")
    return kept is not None and sorted(kept) == sorted(run.eval.flags())


def run_one(run: Run, work_dir: str, results_dir: str) -> dict:
    model_dir = os.path.join(work_dir, run.dataset, run.name)
    keep = os.path.join(results_dir, run.dataset, run.name)
    if _finished(keep, run):
        print(f"[reproduce] {run.dataset}/{run.name}: reusing finished run in {keep}", flush=True)
        return json.load(open(os.path.join(keep, "run.json")))
    trained = train_one(run, work_dir)
    n_eval, eval_args = run.eval.examples, run.eval.flags()
    print(f"[reproduce] {run.dataset}/{run.name}: evaluating ({n_eval} test images)", flush=True)
    started = time.time()
    cmd = [sys.executable, "-m", "nfi_tf.evaluate", f"--model_dir={model_dir}",
           f"--eval_examples={n_eval}", *eval_args]
    subprocess.run(cmd, cwd=REPO, check=True)
    eval_seconds = time.time() - started
    os.makedirs(keep, exist_ok=True)
    stale = os.path.join(keep, INDEPENDENT_FILE)  # it checked the model this run replaces
    if os.path.exists(stale):
        os.remove(stale)
    for f in sorted(os.listdir(model_dir)):
        if f.endswith((".json", ".md", ".png", ".npz")):  # eval.npz: per-example records
            shutil.copy2(os.path.join(model_dir, f), os.path.join(keep, f))
    record = {"dataset": run.dataset, "run": run.name, "train_seconds": trained["train_seconds"],
              "eval_seconds": round(eval_seconds, 1), "steps": trained["steps"],
              "eval_examples": n_eval, "eval_args": eval_args}
    io_utils.atomic_write_json(os.path.join(keep, "run.json"), record)
    return record


def synthesize(run: Run, work_dir: str, results_dir: str, quick: bool) -> str | None:
    """Run `python -m nfi_tf.generate` for the synthesis run (once; reused after)."""
    if run.name != SYNTHESIS_RUN:
        return None
    out = os.path.join(results_dir, run.dataset, run.name, "synthesis")
    if os.path.exists(os.path.join(out, "summary.json")):
        return out
    classes = ",".join(str(c) for c in range(10))
    cmd = [sys.executable, "-m", "nfi_tf.generate",
           f"--model_dir={os.path.join(work_dir, run.dataset, run.name)}",
           f"--classes={classes}", f"--out={out}",
           *(QUICK_SYNTHESIS_ARGS if quick else SYNTHESIS_ARGS)]
    print(f"[reproduce] {run.dataset}/{run.name}: synthesis", flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)
    return out


def independent_check(run: Run, work_dir: str, results_dir: str, quick: bool) -> str:
    """Run the independent attack on one finished run (once; reused after)."""
    out = os.path.join(results_dir, run.dataset, run.name, INDEPENDENT_FILE)
    if os.path.exists(out):
        return out
    cmd = [sys.executable, os.path.join(REPO, "scripts", "independent_attack.py"),
           f"--model_dir={os.path.join(work_dir, run.dataset, run.name)}",
           f"--examples={run.eval.examples}", f"--out={out}",
           *(QUICK_INDEPENDENT_ARGS if quick else [])]
    print(f"[reproduce] {run.dataset}/{run.name}: independent attack", flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget (minutes)")
    parser.add_argument("--plan", choices=("reproduction", "scale_trend"), default="reproduction",
                        help="reproduction: the paper's claims (RESULTS.md's tables); scale_trend: "
                             "CIFAR-10 at 4x the epochs and 2x the width (nfi_tf/experiments/"
                             "scale_trend.py)")
    parser.add_argument("--dry_run", action="store_true",
                        help="list the plan's runs and their commands, run nothing")
    parser.add_argument("--work_dir", default=os.path.join(REPO, "runs", "reproduce"),
                        help="checkpoints and full model dirs (not for git)")
    parser.add_argument("--results_dir", default=None,
                        help="small outputs (default: results/, or results_quick/ with --quick)")
    parser.add_argument("--datasets", default=None,
                        help="run only these datasets' runs, e.g. mnist (default: the plan's; the tables "
                             "still cover every finished run)")
    parser.add_argument("--runs", default="", help="comma list of run names to run, e.g. "
                        "nfi_route_guard_seed0 (default: all; the tables still cover every finished run)")
    parser.add_argument("--stage", choices=("all", "train", "tables"), default="all",
                        help="train: only train the runs (evaluate and tabulate later); tables: "
                             "only rebuild the tables from the runs already finished")
    args = parser.parse_args(argv)
    results_dir = args.results_dir or os.path.join(REPO, "results_quick" if args.quick
                                                   else "results")
    work_dir = args.work_dir + ("_quick" if args.quick else "")
    wanted = set(filter(None, args.runs.split(",")))
    if args.plan == "scale_trend" and args.quick:
        parser.error("--quick is the reproduction plan's; the scale_trend plan has no quick form")
    known = scale_trend.plan() if args.plan == "scale_trend" else plan(args.quick)
    datasets = set(args.datasets.split(",")) if args.datasets else {r.dataset for r in known}
    for asked, valid, flag in ((wanted, {r.name for r in known}, "runs"),
                               (datasets, {r.dataset for r in known}, "datasets")):
        if asked - valid:
            parser.error(f"unknown {flag}: {','.join(sorted(asked - valid))}; "
                         f"the plan has: {','.join(sorted(valid))}")
    if args.dry_run:
        for run in known:
            if run.dataset in datasets and (not wanted or run.name in wanted):
                model_dir = os.path.join(work_dir, run.dataset, run.name)
                print(f"{run.dataset}/{run.name} ({run.kind})")
                for cmd in run.commands(model_dir, python="python"):
                    print("    " + shlex.join(cmd))
        return 0
    for run in known:
        if args.stage == "tables" or run.dataset not in datasets or (wanted and run.name not in wanted):
            continue
        if args.stage == "train":
            train_one(run, work_dir)
            continue
        run_one(run, work_dir, results_dir)
        independent_check(run, work_dir, results_dir, args.quick)
        synthesize(run, work_dir, results_dir, args.quick)
    if args.stage == "train":
        return 0
    if args.plan == "scale_trend":
        print(f"[reproduce] scale_trend: runs in {results_dir}; its tables: "
              "python -m nfi_tf.experiments.scale_report")
        return 0
    # The tables always cover every finished run of the plan, whichever runs this call made (a
    # call limited by --runs or --datasets must not leave tables of just those runs).
    records = [{"dataset": run.dataset, "run": run.name} for run in known
               if _finished(os.path.join(results_dir, run.dataset, run.name), run)]
    text = tables.write_tables(results_dir, records, claims.PAPER_TABLE1, claims.PAPER_TABLE2)
    if os.path.abspath(results_dir) == os.path.join(REPO, "results"):  # the committed results
        tables.update_doc(os.path.join(REPO, "RESULTS.md"), text)
    print(f"[reproduce] done: {len(records)} runs; tables in "
          f"{os.path.join(results_dir, tables.TABLE_FILE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
