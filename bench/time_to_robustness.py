"""Time to robustness: the quickstart's routed worst case against its training minutes.

`python -m bench.time_to_robustness --variants=pgd5_3ep,cyclic_3ep,...` trains each variant of
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

from absl import app, flags

from bench import machine
from nfi_tf import io_utils, outputs
from nfi_tf.evaluation import paired
from nfi_tf.experiments.runs import QUICKSTART

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(_REPO, "bench", "time_to_robustness.json")

# The quickstart trains on its first 17,435 MNIST images; here 1,000 of them are held out for
# validation, so every variant trains on the other 16,435.
_SPLIT = ["--train_examples=16435", "--validation_examples=1000"]

# The variant every other is compared with, image by image: the quickstart's own recipe.
BASELINE = "pgd5_3ep"

# name -> the training flags appended to the quickstart's (they win over its own).
VARIANTS = {
    # The quickstart itself: 3 epochs, PGD-5 (step 0.08), lr 0.05 decayed x0.1 after epoch 2.
    "pgd5_3ep": [],
    "pgd10_3ep": ["--attack_steps=10", "--step_size=0.04"],
    "pgd5_5ep": ["--epochs=5", "--lr_decay_epochs=4"],
    # One cycle (fast adversarial training's schedule): peak 0.1 at 40% of the steps.
    "cyclic_3ep": ["--lr_schedule=cyclic", "--learning_rate=0.1"],
    "cyclic_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.1"],
    "cyclic_7ep": ["--epochs=7", "--lr_schedule=cyclic", "--learning_rate=0.1"],
    # Fewer, larger steps: PGD-3 with step 0.13 (3 x 0.13 > 0.3 reaches the ball's far side).
    "cyclic_pgd3_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.1",
                        "--attack_steps=3", "--step_size=0.13"],
    # Larger batches: half the steps, each on twice the images.
    "cyclic_b256_5ep": ["--epochs=5", "--lr_schedule=cyclic", "--learning_rate=0.2",
                        "--batch_size=256"],
}


def _define_flags() -> None:
    """Defined when run as a command only: importing the module (tests) adds no global flags."""
    flags.DEFINE_list("variants", list(VARIANTS), f"Variants to run, of {', '.join(VARIANTS)}")
    flags.DEFINE_string("out_dir", os.path.join(_REPO, "runs", "time_to_robustness"),
                        "Where each variant's model dir goes")
    flags.DEFINE_boolean("again", False, "Measure variants already in the results file again")


FLAGS = flags.FLAGS


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
    evaluate = evaluate + ["--split=validation"]
    os.makedirs(model_dir, exist_ok=True)
    load = os.getloadavg()[0]
    train_seconds = _run(train, os.path.join(model_dir, "train.log"))
    with open(os.path.join(model_dir, "history.json")) as f:
        history = json.load(f)
    eval_seconds = _run(evaluate, os.path.join(model_dir, "evaluate.log"))
    with open(os.path.join(model_dir, "validation", "eval.json")) as f:
        report = json.load(f)
    routed = report["table"][outputs.ROUTED]
    return {"variant": name, "flags": VARIANTS[name], "load_average_at_start": round(load, 2),
            "robust": _robust_images(model_dir),
            "train_seconds": round(train_seconds, 1),
            "epoch_seconds": [e.get("seconds") for e in history],
            "steps": history[-1]["step"], "eval_seconds": round(eval_seconds, 1),
            "validation_examples": report["examples"], "clean": routed["clean"],
            "worst_case": routed["worst_case"]}


def _robust_images(model_dir: str) -> str:
    """Which validation images the routed model kept under every attack, as '0'/'1' per image
    (the paired comparison between variants is made on these)."""
    evaluation = paired.Evaluation(os.path.join(model_dir, "validation"))
    robust = evaluation.correct(outputs.ROUTED, "worst_case")
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
                     f"{e['train_seconds'] / 60:.1f} | {100 * e['clean']:.1f}% | "
                     f"{100 * e['worst_case']:.1f}% | {_paired(e, baseline)} |")
    return "\n".join(lines)


def main(argv):
    del argv
    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"error: unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    results = {"machines": {}}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            results = json.load(f)
    here = machine.machine()
    cpu = here["cpu_model"] or "unknown CPU"
    entry = results["machines"].setdefault(cpu, {"machine": here, "variants": {}})
    for name in FLAGS.variants:
        if name in entry["variants"] and not FLAGS.again:
            print(f"{name}: measured already on {cpu} (--again to redo)", flush=True)
            continue
        model_dir = os.path.join(FLAGS.out_dir, name)
        if os.path.exists(os.path.join(model_dir, "history.json")):
            raise SystemExit(f"error: {model_dir} holds a trained model: its training would not "
                             "be timed; remove it or pass another --out_dir")
        print(f"{name}: training and evaluating in {model_dir} ...", flush=True)
        entry["variants"][name] = measure(name, model_dir)
        io_utils.atomic_write_json(RESULTS, results)  # after each variant: a crash keeps the rest
        e = entry["variants"][name]
        print(f"{name}: {e['train_seconds'] / 60:.1f} min of training, routed worst case "
              f"{100 * e['worst_case']:.1f}% on {e['validation_examples']} validation images",
              flush=True)
    print(table(list(entry["variants"].values())))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
