#!/usr/bin/env bash
# The main job (README): install, train the method (--method=nfi) on real MNIST, then evaluate
# it (PGD-40 and CW-Linf on every output, adaptive attacks through the routing switch, per-example
# worst case; APGD is left to `python -m nfi_tf.evaluate` without --attacks) and print the table.
# A CPU-sized run: 3 epochs on the full 17,435-image MNIST train split with a 10-step PGD (the
# paper trains 100 epochs with PGD-40); evaluation on 500 test images. Rerunning resumes or
# reuses what is done; pass extra train flags after the script name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup
MODEL_DIR="${MODEL_DIR:-runs/mnist_quickstart}"
python -m nfi_tf.train --dataset=mnist --model_dir="$MODEL_DIR" --epochs=3 --attack_steps=10 \
  --step_size=0.04 --learning_rate=0.05 --lr_decay_epochs=2 --eval_examples=500 "$@"
python -m nfi_tf.evaluate --model_dir="$MODEL_DIR" --eval_examples=500 --attacks=clean,pgd,cw,adaptive
echo "quickstart: model, eval.json and eval.md in $MODEL_DIR"
