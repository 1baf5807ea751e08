#!/usr/bin/env bash
# The test command (README): install the package with its dev extra, then run the suite on the
# real data beside the repo when it is there (../shared/data/tfds), else tfds' default dir.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[dev]"
if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/data/tfds ]; then
  export TFDS_DATA_DIR="$(cd ../shared/data/tfds && pwd)"
fi
python -m pytest -q "$@"
