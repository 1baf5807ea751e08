# Sourced by the README's commands (quickstart, tests, reproduce): one environment for all.
# - Python: the active virtual environment if there is one, else .venv/ in the repo (made on
#   first use), so a fresh machine needs nothing but python3; the project is installed into it
#   as the README says (`pip install -e .`, plus the dev extra for the tests).
# - Data: ../shared/data/tfds (real MNIST and CIFAR-10 prepared for tfds) when it exists and
#   TFDS_DATA_DIR is unset; elsewhere tfds downloads the originals.
# Usage: source scripts/setup_env.sh; nfi_setup [EXTRA]   (EXTRA: "dev" for the test tools)
nfi_setup() {
  if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
      echo "setup: creating the virtual environment .venv/" >&2
      python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
  fi
  echo "setup: installing nfi-tf${1:+[$1]} into $VIRTUAL_ENV" >&2
  python -m pip install -q -e ".${1:+[$1]}"
  if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/data/tfds ]; then
    TFDS_DATA_DIR="$(cd ../shared/data/tfds && pwd)"
    export TFDS_DATA_DIR
  fi
}
