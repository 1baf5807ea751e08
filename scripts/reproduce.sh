#!/usr/bin/env bash
# Reproduce the paper's claims at CPU scale on real data (RESULTS.md): trains and evaluates
# TRADES and nfi on MNIST and CIFAR-10 plus the ablations, then writes the tables.
#   bash scripts/reproduce.sh           # full plan: 34 runs, about 17 h on 2 CPU cores (resumable)
#   bash scripts/reproduce.sh --quick   # the same pipeline on a tiny budget (minutes)
# Every flag of `python -m nfi_tf.experiments reproduce` (--plan, --stage, --runs, --datasets,
# --dry_run, --work_dir, --results_dir), which this runs; scripts/reproduce.py is the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup
exec python -m nfi_tf.experiments reproduce "$@"
