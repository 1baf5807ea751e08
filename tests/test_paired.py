"""Paired comparisons (McNemar's exact test) and the per-example cells they compare."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nfi_tf.errors import NfiError
from nfi_tf.evaluation import paired, records
from nfi_tf.evaluation.keys import AttackKey


def test_exact_mcnemar_by_hand():
    # 8 images only A gets right, 2 only B: p = 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10.
    a = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 5, bool)
    b = np.array([0] * 8 + [1] * 2 + [1] * 5 + [0] * 5, bool)
    r = paired.mcnemar(a, b)
    assert (r["a_only"], r["b_only"], r["n"]) == (8, 2, 20)
    assert r["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert r["difference"] == pytest.approx(6 / 20)
    # Symmetric in A and B; all agreement gives p = 1.
    assert paired.mcnemar(b, a)["p_value"] == pytest.approx(r["p_value"])
    assert paired.mcnemar(a, a)["p_value"] == 1.0
    assert paired.binomial_two_sided(0, 10) == pytest.approx(2 / 1024)
    assert paired.binomial_two_sided(5, 10) == 1.0
    with pytest.raises(NfiError, match="equal-length"):
        paired.mcnemar(a, b[:5])


def test_pooling_adds_disagreements_and_verdicts_need_every_seed():
    one = (np.array([1] * 12 + [0] * 8, bool), np.array([0] * 12 + [0] * 8, bool))  # 12 vs 0
    flip = (np.array([0, 0, 1, 1], bool), np.array([1, 1, 1, 1], bool))  # this seed: B ahead, 0 vs 2
    r = paired.pooled([one, flip])
    assert (r["a_only"], r["b_only"], r["n"], r["seeds"]) == (12, 2, 24, 2)
    assert r["p_value"] == pytest.approx(2 * (1 + 14 + math.comb(14, 2)) / 2 ** 14)
    assert r["per_seed_difference"] == pytest.approx([0.6, -0.5])
    assert r["spread"] == pytest.approx(np.std([0.6, -0.5], ddof=1))
    assert r["p_value"] < paired.ALPHA
    assert paired.verdict(r) == "inconclusive"  # significant, but one seed points the other way
    assert paired.verdict(paired.pooled([one, one])) == "reproduced"
    assert paired.verdict(paired.pooled([one[::-1]])) == "not reproduced"
    assert paired.verdict(paired.pooled([flip])) == "inconclusive"  # 0 vs 2 is not significant


def test_cells_are_the_worst_case_over_their_keys(tmp_path):
    correct = {"routed": {
        "clean": np.array([1, 1, 1, 0], bool),
        "pgd@routed:hard": np.array([1, 0, 1, 0], bool),
        "pgd@routed:st": np.array([1, 1, 0, 0], bool),
        "apgd_ce@routed:hard": np.array([1, 1, 1, 1], bool),  # suite: counts with clean
        "square@routed": np.array([0, 1, 1, 1], bool),
        "route@routed:all_heads": np.array([1, 1, 1, 1], bool),
    }}
    margins = {"routed": {k: v.astype(np.float32) for k, v in correct["routed"].items()}}
    records.save(str(tmp_path / "eval.npz"), {}, np.zeros(4, np.int32), correct, margins)
    result = SimpleNamespace(suite_keys=[AttackKey.parse("apgd_ce@routed:hard"),
                                         AttackKey.parse("square@routed")])
    e = paired.Evaluation(str(tmp_path), result)
    np.testing.assert_array_equal(e.correct("routed", "pgd"), [1, 0, 0, 0])
    np.testing.assert_array_equal(e.correct("routed", "autoattack"), [0, 1, 1, 0])
    np.testing.assert_array_equal(e.correct("routed", "route_aware"), [1, 1, 1, 1])
    np.testing.assert_array_equal(e.correct("routed", "worst_case"), [0, 0, 0, 0])
    assert e.correct("routed", "cw") is None and e.correct("tradeoff", "clean") is None
    (tmp_path / "other").mkdir()
    with pytest.raises(NfiError, match="no eval.npz"):
        paired.Evaluation(str(tmp_path / "other"), result)
    # Without a report in hand it reads eval.json beside the records (here: none, a one-line error).
    with pytest.raises(NfiError, match="cannot read the evaluation report"):
        paired.Evaluation(str(tmp_path))
