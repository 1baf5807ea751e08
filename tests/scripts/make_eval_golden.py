"""Record the evaluation goldens (tests/golden/eval_*.json) that tests/test_eval_golden.py
compares every later evaluation against: the same fixed-seed evaluations must give the same
per-example results and the same table, whatever the code under them becomes.

    python tests/scripts/make_eval_golden.py     # rewrites tests/golden/

Each golden holds the cases' tables and every (output, attack key) per-example correctness as a
0/1 string, with the numeric environment it was recorded on (TensorFlow's kernel choice and
the CPU's vector extensions): the last bits of every convolution, and so a near-tie image, can
differ on another kernel set (docs/development.md, numeric paths).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/ (helpers, eval_golden_cases)
importlib.import_module("nfi_tf")

import eval_golden_cases as cases  # noqa: E402


def main() -> int:
    os.makedirs(cases.GOLDEN_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in cases.CASES:
            record = cases.run(name, scratch)
            record["environment"] = cases.environment()
            path = os.path.join(cases.GOLDEN_DIR, f"eval_{name}.json")
            with open(path, "w") as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"wrote {path}: {record['table']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
