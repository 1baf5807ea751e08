"""Paired comparisons of two evaluated outputs on the same test images (McNemar's exact test).

Two models evaluated on the same images are compared on the images where they disagree: `a_only`
images only A gets right, `b_only` only B. Under "no difference" each disagreement is a fair coin,
so the two-sided p-value is an exact binomial tail. The images both get right (or both wrong)
carry no information about the difference; this is why a paired test is sharper than comparing
two accuracies as if they came from independent samples.

Several seeds are pooled by adding their disagreement counts (each seed pairs its own two runs on
the same images), and the spread of the per-seed differences is reported beside the pooled test.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from nfi_tf.errors import NfiError
from nfi_tf.evaluation import plan, records
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.keys import CLEAN
from nfi_tf.evaluation.report import EVAL_JSON, EVAL_NPZ, EvalReport
from nfi_tf.evaluation.vocab import Column

# Two-sided level of every verdict.
ALPHA = 0.05


def binomial_two_sided(k: int, n: int) -> float:
    """P(a fair-coin count as far from n/2 as k is) — McNemar's exact p-value for k of n."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict:
    """Compare per-example correctness `a` and `b` (same images, same order)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise NfiError(f"paired comparison needs two equal-length 1-D vectors. "
                       f"Received shapes {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return {"n": int(len(a)), "a_only": a_only, "b_only": b_only,
            "difference": (a_only - b_only) / len(a),
            "p_value": binomial_two_sided(a_only, a_only + b_only)}


def pooled(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """McNemar over several seeds' pairs (counts added) plus the per-seed differences."""
    if not pairs:
        raise NfiError("pooled comparison needs at least one pair")
    per_seed = [mcnemar(a, b) for a, b in pairs]
    a_only = sum(r["a_only"] for r in per_seed)
    b_only = sum(r["b_only"] for r in per_seed)
    n = sum(r["n"] for r in per_seed)
    diffs = [r["difference"] for r in per_seed]
    return {"seeds": len(per_seed), "n": n, "a_only": a_only, "b_only": b_only,
            "difference": (a_only - b_only) / n,
            "per_seed_difference": diffs,
            "spread": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None,
            "p_value": binomial_two_sided(a_only, a_only + b_only),
            "per_seed_p_value": [r["p_value"] for r in per_seed]}


def verdict(result: dict, alpha: float = ALPHA) -> str:
    """On the claim "A is higher than B": reproduced when the pooled test is significant in the
    claimed direction and no seed points the other way; not reproduced when it is significant
    the other way; inconclusive otherwise."""
    significant = result["p_value"] < alpha
    if significant and result["difference"] > 0 and all(d >= 0 for d in result["per_seed_difference"]):
        return "reproduced"
    if significant and result["difference"] < 0:
        return "not reproduced"
    return "inconclusive"


class Evaluation:
    """One model's eval.npz and eval.json: per-example correctness of each table cell."""

    def __init__(self, run_dir: str, result: EvalReport | dict | None = None):
        path = os.path.join(run_dir, EVAL_NPZ)
        if not os.path.exists(path):
            raise NfiError(f"{run_dir} has no eval.npz (per-example records); re-run the evaluation")
        self.record = records.load(path)
        if result is None:
            result = EvalReport.load(os.path.join(run_dir, EVAL_JSON))
        elif isinstance(result, dict):  # eval.json as read from the file
            result = EvalReport.from_json(result, os.path.join(run_dir, EVAL_JSON))
        self.result = result

    def correct(self, row: str, column: str) -> np.ndarray | None:
        """[N] correctness behind table[row][column] (None where the cell was not measured)."""
        by_key = self.record["correct"].get(row)
        if by_key is None:
            return None
        if column == Column.WORST_CASE:
            return wc.all_correct(by_key)
        if column == Column.CLEAN:
            return np.asarray(by_key[CLEAN], bool)
        planned = plan.planned_from_keys(list(by_key), self.result.suite_keys)
        keys = plan.column_keys(planned, column, row)
        if not keys:
            return None
        if column == Column.AUTOATTACK:
            keys = [CLEAN] + keys
        return wc.all_correct({k: by_key[k] for k in keys})
