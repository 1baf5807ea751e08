"""Train the committed test fixtures: the briefly trained MNIST models under tests/fixtures/.

    TFDS_DATA_DIR=../shared/data/tfds python tests/scripts/make_fixtures.py [--seeds=0,1]

Why committed weights: a model trained during the test session has weights that depend on the
CPU's kernels (oneDNN on or off, AVX2 or AVX-512) and on the number of intra-op threads, so
every empirical property asserted on it (robust accuracy under an attack, synthesis shares...)
moved from one machine to the next. Trained once and committed, the weights are the same
everywhere; what is left between CPUs is last-bit float differences in the attacks themselves.
`NFI_TEST_FIXTURES=train` (tests/conftest.py) still trains them in the session, from the same
config, to check the tests on fresh weights.

Each fixture keeps what the tests read (config.json, model.keras, summary.json, history.json);
checkpoints and TensorBoard logs are dropped. About 1 min per model on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os


def _load_helpers():
    """tests/helpers.py, loaded from its file: tests/ is not a package (and an installed
    dependency ships a `tests` package of its own), so it is not importable by name here."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers.py")
    spec = importlib.util.spec_from_file_location("helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()

METHODS = ("nfi", "trades")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in METHODS:
            out = helpers.train_fixture(method, seed, helpers.fixture_dir(method, seed))
            print("wrote", out, flush=True)


if __name__ == "__main__":
    main()
