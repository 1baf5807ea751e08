#!/usr/bin/env bash
# The test command (README; `.ci/run` runs exactly this in a brand-new virtual environment).
# Installs the project with its dev extra (into the active venv, else .venv/) and runs the full
# suite on real data. Extra arguments go to pytest, e.g. the fast tier: -m "not large".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup_env.sh
source scripts/setup_env.sh
nfi_setup dev
python -m pytest -q "$@"
