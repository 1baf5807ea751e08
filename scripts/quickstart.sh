#!/usr/bin/env bash
# The main job (README): install, train the method (--method=nfi) on real MNIST, then evaluate
# it and print the table: PGD-40 and CW-Linf, AutoAttack's suite (APGD-CE, APGD-T, FAB-T, Square)
# and the route-aware attacks against the routed model and the trade-off head (every input also
# scored on every other output), per-example worst case.
# A CPU-sized run: 3 epochs on the 17,435-image MNIST train split prepared here with a 10-step
# PGD (the paper trains 100 epochs with PGD-40); evaluation on 500 test images with AutoAttack's
# budget cut to 50 iterations, 3 targets and 1,000 Square queries (the report says so).
# Rerunning resumes or reuses what is done; pass extra train flags after the script name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup
MODEL_DIR="${MODEL_DIR:-runs/mnist_quickstart}"
python -m nfi_tf.train --dataset=mnist --model_dir="$MODEL_DIR" --epochs=3 --attack_steps=10 \
  --step_size=0.04 --learning_rate=0.05 --lr_decay_epochs=2 --eval_examples=500 "$@"
python -m nfi_tf.evaluate --model_dir="$MODEL_DIR" --eval_examples=500 \
  --attacks=clean,pgd,cw,autoattack,route_aware --attack_outputs=routed,tradeoff \
  --apgd_steps=50 --apgd_targets=3 --fab_steps=50 --fab_targets=3 --square_queries=1000 \
  --route_steps=50 --route_targets=1
echo "quickstart: model, eval.json and eval.md in $MODEL_DIR"
