"""The same fixed-seed evaluations give the same per-example results and the same table as when
the goldens were recorded (tests/golden/, tests/scripts/make_eval_golden.py): whatever the
evaluation code under them becomes, a user's numbers do not move.

Exactly equal on the numeric environment the goldens were recorded on (kernel set and CPU
extensions: tests/eval_golden_cases.environment); elsewhere a last-bit tie can flip an image, so
there each (output, attack) may differ on at most one image of the 24 and every table cell by at
most one image.
"""

import json
import os

import eval_golden_cases as cases
import pytest

EXAMPLES = cases.EXAMPLES


def _golden(name):
    with open(os.path.join(cases.GOLDEN_DIR, f"eval_{name}.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", cases.CASES)
def test_a_fixed_seed_evaluation_gives_the_recorded_images_and_table(name, tmp_path):
    golden = _golden(name)
    got = cases.run(name, str(tmp_path))
    assert got["rows"] == golden["rows"] and got["columns"] == golden["columns"]
    assert got["labels"] == golden["labels"]
    assert {r: sorted(k) for r, k in got["correct"].items()} == \
        {r: sorted(k) for r, k in golden["correct"].items()}  # the same attacks ran on the same rows
    exact = cases.environment() == golden["environment"]
    for row, by_key in golden["correct"].items():
        for key, bits in by_key.items():
            flips = sum(a != b for a, b in zip(bits, got["correct"][row][key]))
            assert flips <= (0 if exact else 1), (row, key, flips)
    for row, cells in golden["table"].items():
        for column, value in cells.items():
            if value is None:
                assert got["table"][row][column] is None, (row, column)
            elif exact:
                assert got["table"][row][column] == value, (row, column)
            else:
                assert abs(got["table"][row][column] - value) <= 1 / EXAMPLES + 1e-12, (row, column)
