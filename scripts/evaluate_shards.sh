#!/usr/bin/env bash
# One evaluation split across N local processes (one per GPU where there are GPUs), then gathered
# into the report the unsharded run writes, image for image (docs/evaluation.md, "Sharded
# evaluation"). Every argument after N goes to each `python -m nfi_tf.evaluate`.
#   bash scripts/evaluate_shards.sh N --model_dir=runs/mnist_quickstart --eval_examples=all
# On a machine with GPUs, shard I runs with CUDA_VISIBLE_DEVICES=I (one process per GPU; N at
# most the GPU count). On CPUs the cores are split between the processes
# (TF_NUM_INTRAOP_THREADS = cores / N, at least 1), so N processes do not oversubscribe them.
# Exit status: the first failing shard's, else the gather's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash scripts/evaluate_shards.sh N [python -m nfi_tf.evaluate flags...]" >&2
  exit 2
fi
n="$1"; shift
python="${PYTHON:-python}"
gpus=0
if command -v nvidia-smi > /dev/null 2>&1; then
  gpus="$(nvidia-smi --list-gpus 2> /dev/null | wc -l || echo 0)"
fi
cores="$(nproc 2> /dev/null || echo 1)"
threads=$(( cores / n )); [ "$threads" -ge 1 ] || threads=1
pids=()
for ((i = 0; i < n; i++)); do
  if [ "$gpus" -gt 0 ]; then
    CUDA_VISIBLE_DEVICES=$(( i % gpus )) NFI_SHARD_INDEX=$i "$python" -m nfi_tf.evaluate "$@" \
      --shard=env/"$n" --verbose=0 &
  else
    TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-$threads}" NFI_SHARD_INDEX=$i \
      "$python" -m nfi_tf.evaluate "$@" --shard=env/"$n" --verbose=0 &
  fi
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
  code=0
  wait "$pid" || code=$?
  if [ "$status" -eq 0 ] && [ "$code" -ne 0 ]; then status=$code; fi
done
if [ "$status" -ne 0 ]; then
  echo "evaluate_shards: a shard failed (exit $status); nothing gathered" >&2
  exit "$status"
fi
exec "$python" -m nfi_tf.evaluate "$@" --gather
