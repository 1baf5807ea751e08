"""Time to robustness: the quickstart's routed worst case against its training minutes.

`python -m bench --suite=time_to_robustness --variants=pgd5_3ep,cyclic_3ep,...` (also `python -m
bench.time_to_robustness ...`; flags: bench.config.TimeToRobustnessConfig) trains each variant of
the quickstart's recipe (`nfi_tf.experiments.QUICKSTART`, with the variant's flags appended) and
evaluates it with the quickstart's own evaluation (PGD-40, CW, APGD-CE, APGD-T and the
route-aware attacks against the routed model, in cascade), on VALIDATION images: the first 500
of 1,000 training images held out of training (`--validation_examples`, `--split=validation`).
The test images are never looked at here, so the recipe chosen from this curve can be checked on
them once.

Each variant's training command is timed as a whole (the minutes a user waits, the per-epoch
check included), with the load average at its start; benchmark only on idle cores. Results are
appended to `bench/time_to_robustness.json` (one entry per variant and machine; a variant
already measured on this CPU model is skipped unless `--again`), and the table is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from bench import machine
from bench.config import TIME_TO_ROBUSTNESS_VARIANTS
from nfi_tf import io_utils, outputs
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import paired
from nfi_tf.evaluation.vocab import Column
from nfi_tf.experiments.runs import QUICKSTART

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(_REPO, "bench", "time_to_robustness.json")

# The quickstart trains on its first 17,435 MNIST images; here 1,000 of them are held out for
# validation, so every variant trains on the other 16,435.
_SPLIT = ["--train_examples=16435", "--validation_examples=1000"]

# The variant every other is compared with, image by image: the quickstart's own recipe.
BASELINE = "pgd5_3ep"

VARIANTS = TIME_TO_ROBUSTNESS_VARIANTS  # name -> training flags (bench/config.py)


def _run(argv: list[str], log_path: str) -> float:
    """Run one command with its output in `log_path`; its wall time in seconds."""
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=_REPO)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[1:4])} exited {proc.returncode}; see {log_path}")
    return time.monotonic() - start


def measure(name: str, model_dir: str) -> dict:
    train, evaluate = QUICKSTART.commands(model_dir, extra_train_flags=_SPLIT + VARIANTS[name])
    evaluate = evaluate + [f"--split={Split.VALIDATION}"]
    os.makedirs(model_dir, exist_ok=True)
    load = os.getloadavg()[0]
    train_seconds = _run(train, os.path.join(model_dir, "train.log"))
    with open(os.path.join(model_dir, "history.json")) as f:
        history = json.load(f)
    eval_seconds = _run(evaluate, os.path.join(model_dir, "evaluate.log"))
    with open(os.path.join(model_dir, Split.VALIDATION, "eval.json")) as f:
        report = json.load(f)
    routed = report["table"][outputs.ROUTED]
    return {"variant": name, "flags": VARIANTS[name], "load_average_at_start": round(load, 2),
            "robust": _robust_images(model_dir),
            "train_seconds": round(train_seconds, 1),
            "epoch_seconds": [e.get("seconds") for e in history],
            "steps": history[-1]["step"], "eval_seconds": round(eval_seconds, 1),
            "validation_examples": report["examples"], Column.CLEAN: routed[Column.CLEAN],
            Column.WORST_CASE: routed[Column.WORST_CASE]}


def _robust_images(model_dir: str) -> str:
    """Which validation images the routed model kept under every attack, as '0'/'1' per image
    (the paired comparison between variants is made on these)."""
    evaluation = paired.Evaluation(os.path.join(model_dir, Split.VALIDATION))
    robust = evaluation.correct(outputs.ROUTED, Column.WORST_CASE)
    return "".join("1" if r else "0" for r in robust)


def _paired(entry: dict, baseline: dict | None) -> str:
    """'+2.4 (p=0.03)': the worst case's difference from the baseline's on the same images,
    with McNemar's exact p."""
    if baseline is None or entry is baseline:
        return "—"
    vector = lambda e: [c == "1" for c in e["robust"]]  # noqa: E731
    r = paired.mcnemar(vector(entry), vector(baseline))
    return f"{100 * r['difference']:+.1f} (p={r['p_value']:.2g})"


def table(entries: list[dict]) -> str:
    baseline = next((e for e in entries if e["variant"] == BASELINE), None)
    lines = ["| variant | training flags (on the quickstart's) | steps | training min | "
             f"clean | routed worst case | vs {BASELINE}, paired |", "|---|---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: e["train_seconds"]):
        lines.append(f"| {e['variant']} | {' '.join(e['flags']) or '(none)'} | {e['steps']} | "
                     f"{e['train_seconds'] / 60:.1f} | {100 * e[Column.CLEAN]:.1f}% | "
                     f"{100 * e[Column.WORST_CASE]:.1f}% | {_paired(e, baseline)} |")
    return "\n".join(lines)


def _results() -> dict:
    if not os.path.exists(RESULTS):
        return {"machines": {}}
    with open(RESULTS) as f:
        return json.load(f)


def run_suite(config, log=print) -> None:
    """--suite=time_to_robustness: a TimeToRobustnessConfig's variants measured, each saved to
    RESULTS as soon as it is done, then the table."""
    results = _results()
    here = machine.machine()
    cpu = here["cpu_model"] or "unknown CPU"
    entry = results["machines"].setdefault(cpu, {"machine": here, "variants": {}})
    for name in config.variants:
        if name in entry["variants"] and not config.again:
            log(f"{name}: measured already on {cpu} (--again to redo)")
            continue
        model_dir = os.path.join(config.out_dir, name)
        if os.path.exists(os.path.join(model_dir, "history.json")):
            raise NfiError(f"{model_dir} holds a trained model: its training would not be timed; "
                           f"remove it or pass another --out_dir. Received: out_dir={config.out_dir}")
        log(f"{name}: training and evaluating in {model_dir} ...")
        entry["variants"][name] = measure(name, model_dir)
        io_utils.atomic_write_json(RESULTS, results)  # after each variant: a crash keeps the rest
        e = entry["variants"][name]
        log(f"{name}: {e['train_seconds'] / 60:.1f} min of training, routed worst case "
            f"{100 * e[Column.WORST_CASE]:.1f}% on {e['validation_examples']} validation images")
    log(table(list(entry["variants"].values())))


if __name__ == "__main__":
    from bench.cli import alias

    alias("time_to_robustness")
