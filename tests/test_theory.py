"""Section 4: the head-count bound of eq. 21 against hand-computed values, and its CLI."""

import math
import os

import pytest
from helpers import run_cli

from nfi_tf.errors import NfiError
from nfi_tf.theory import heads_bound, min_heads, table

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("test_size,p,expected", [
    # p = 1: (1 - 1/2)^2 * 1 = 1/4, so n >= 8 ln(|S|/2).  8 ln 1000 = 55.26
    (2000, 1.0, 56),
    # p = 3/4: (1 - 2/3)^2 * 3/4 = 1/12, so n >= 24 ln(|S|/2).  24 ln 1000 = 165.79
    (2000, 0.75, 166),
    # p = 0.9: (4/9)^2 * 0.9 = 0.17778.  2 ln 5000 / 0.17778 = 95.82
    (10_000, 0.9, 96),
    # |S| = 2: log 1 = 0, one head is the smallest meaningful answer
    (2, 0.9, 1),
])
def test_min_heads_hand_computed(test_size, p, expected):
    assert min_heads(test_size, p) == expected


def test_exact_integer_bound_is_not_rounded_up():
    # p = 1, |S|/epsilon = e^2: the bound is 8 * 2 = 16 exactly, up to float rounding.
    eps = 2 * math.exp(-2)
    assert heads_bound(2 / eps, 1.0) == pytest.approx(16.0)
    assert min_heads(2, 1.0, epsilon=eps) == 16
    assert min_heads(2, 1.0, epsilon=eps * 0.99) == 17


def test_epsilon_replaces_the_printed_two():
    # log(|S|/eps) with eps = 0.01, p = 1: 8 ln(10^6) = 110.52
    assert min_heads(10_000, 1.0, epsilon=0.01) == 111
    assert min_heads(10_000, 0.9, epsilon=1.0) >= min_heads(10_000, 0.9)


def test_bound_decreases_with_accuracy_and_grows_with_test_size():
    assert min_heads(10_000, 0.6) > min_heads(10_000, 0.8) > min_heads(10_000, 0.95)
    assert min_heads(1_000, 0.8) < min_heads(10_000, 0.8) < min_heads(100_000, 0.8)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.0, -1.0, 1.01])
def test_p_outside_half_to_one_is_an_error(p):
    with pytest.raises(NfiError, match=f"Received: p={p!r}"):
        min_heads(1000, p)


@pytest.mark.parametrize("test_size", [1, 0, -5, 10.5])
def test_bad_test_size_is_an_error(test_size):
    with pytest.raises(NfiError, match="test_size"):
        min_heads(test_size, 0.9)


def test_table_has_a_row_per_size():
    text = table((1000, 10_000), (0.6, 0.9))
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[2].split()[-1] == str(min_heads(10_000, 0.9))


def _cli(*args):
    return run_cli("nfi_tf.theory", *args, timeout=120)


@pytest.mark.large
def test_cli_prints_bound_and_table():
    r = _cli("--test_size=2000", "--p=0.75")
    assert r.returncode == 0, r.stderr
    assert "n >= 166" in r.stdout
    assert "100,000" in r.stdout


@pytest.mark.large
def test_cli_bad_p_exits_2_with_one_line():
    r = _cli("--p=0.5")
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("nfi_tf.theory: error:")]
    assert len(errors) == 1 and "p=0.5" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
