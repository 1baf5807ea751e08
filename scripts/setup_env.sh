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
  # pip is asked again only when pyproject.toml changed since the last install into this
  # environment (or the extra is new): a no-op `pip install -e .` still costs seconds per command.
  local stamp="$VIRTUAL_ENV/.nfi_tf_installed${1:+_$1}" want
  want="$(python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing nfi-tf${1:+[$1]} into $VIRTUAL_ENV" >&2
    python -m pip install -q -e ".${1:+[$1]}"
    echo "$want" > "$stamp"
  fi
  if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/data/tfds ]; then
    TFDS_DATA_DIR="$(cd ../shared/data/tfds && pwd)"
    export TFDS_DATA_DIR
  fi
}
