#!/usr/bin/env bash
# The main job (README): install, train the method (--method=nfi) on real MNIST, then evaluate
# it and print the table: PGD-40 and CW-Linf, AutoAttack's suite (APGD-CE, APGD-T, FAB-T, Square)
# and the route-aware attacks against the routed model and the trade-off head (every input also
# scored on every other output), per-example worst case.
# A CPU-sized run: 3 epochs on the 17,435-image MNIST train split prepared here with a 10-step
# PGD (the paper trains 100 epochs with PGD-40); evaluation on 500 test images with AutoAttack's
# budget cut to 50 iterations, 3 targets and 1,000 Square queries (the report says so).
# The run and its budget are data: nfi_tf/experiments/runs.py (QUICKSTART) and budgets.py; this
# runs its two commands, `python -m nfi_tf.train` then `python -m nfi_tf.evaluate` (add
# --dry_run after "quickstart" below to print them).
# Rerunning resumes or reuses what is done; pass extra train flags after the script name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup
MODEL_DIR="${MODEL_DIR:-runs/mnist_quickstart}"
python -m nfi_tf.experiments run quickstart --model_dir="$MODEL_DIR" "$@"
echo "quickstart: model, eval.json and eval.md in $MODEL_DIR"
