#!/usr/bin/env bash
# The test command (README; `.ci/run` runs exactly this in a brand-new virtual environment).
# Installs the project with its dev extra (into the active venv, else .venv/) and runs the full
# suite on real data. Extra arguments go to pytest, e.g. the fast tier: -m "not large".
#
# --numeric-paths (first argument): run the same tests once per numeric path and fail if any
# fails: TensorFlow's default kernels; the other oneDNN setting (TF_ENABLE_ONEDNN_OPTS flipped
# from what TensorFlow picks on this CPU); one intra-op thread; the committed fixtures of seed 1.
# Each path changes the last bits of every convolution, so a test that holds on one CPU kind
# only fails here. The fast tier takes about 4 x 5 min on 2 cores:
#   bash scripts/run_tests.sh --numeric-paths -m "not large"
# Other switches (environment): NFI_TEST_FIXTURE_SEED=1 (the second committed fixture seed),
# NFI_TEST_FIXTURES=train (train the fixtures in the session on this CPU), TF_ENABLE_ONEDNN_OPTS,
# TF_NUM_INTRAOP_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup dev
if [ "${1:-}" != "--numeric-paths" ]; then
  python -m pytest -q "$@"
  exit
fi
shift
# What the tests run by default: the kernels importing nfi_tf picks (nfi_tf/cpu_kernels.py).
default_on="$(python -c 'import nfi_tf; from bench.machine import onednn_ops_expected; print(int(onednn_ops_expected()[0]))')"
other=$((1 - default_on))
paths=("default:" "oneDNN-ops-$other:TF_ENABLE_ONEDNN_OPTS=$other" "one-thread:TF_NUM_INTRAOP_THREADS=1"
       "fixture-seed-1:NFI_TEST_FIXTURE_SEED=1")
summary=()
status=0
for path in "${paths[@]}"; do
  name="${path%%:*}"
  setting="${path#*:}"
  echo "=== numeric path $name: ${setting:-the kernels TensorFlow picks on this CPU}" >&2
  # shellcheck disable=SC2086  # $setting is one VAR=value word or none
  if env $setting python -m pytest -q "$@"; then
    summary+=("$name: passed")
  else
    summary+=("$name: FAILED")
    status=1
  fi
done
printf 'numeric paths: %s\n' "${summary[@]}" >&2
exit "$status"
