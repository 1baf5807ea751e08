"""Section 4: how many heads does a majority of correct heads need? The bound of eq. 21.

`python -m nfi_tf.theory [--test_size=N --p=P]` prints the bound and a table of it (the command
is nfi_tf.commands.theory; this module is the library and imports no flags).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from nfi_tf.errors import NfiError

TABLE_SIZES = (1_000, 10_000, 100_000)
TABLE_ACCURACIES = (0.6, 0.7, 0.8, 0.9, 0.95)


def min_heads(test_size: int, p: float, epsilon: float | None = None) -> int:
    """The smallest number of heads n allowed by eq. 21: n >= 2 ln(|S|/2) / (p (1 - 1/(2p))^2).

    The paper's derivation (section 4), made explicit:
      * Each of n heads is right on an attacked sample with probability p (its robust
        accuracy), independently of the other heads; x = sum of the n indicators, E[x] = n p.
      * "More heads right than wrong" fails iff x <= n/2 = (1 - d) E[x] with d = 1 - 1/(2p).
        The multiplicative Chernoff bound Pr(x <= (1 - d) E[x]) <= exp(-d^2 E[x] / 2) needs
        0 < d < 1, i.e. p > 1/2 (eq. 18).
      * A union bound over the |S| test samples (eq. 19) and asking the result to be at most
        epsilon (eq. 20) give n >= 2 ln(|S| / epsilon) / (p d^2).

    Gaps in the paper's derivation (the function computes the bound anyway):
      * Eqs. 19-20 lose the exponential ("|S| * -(...)" should read "|S| * exp(-(...))").
      * Eq. 21 has |S|/2 where |S|/epsilon belongs: as printed it is the bound for
        epsilon = 2, a vacuous guarantee on a probability. `epsilon=None` reproduces eq. 21 as
        printed; pass `epsilon` in (0, 1] for the bound the derivation actually gives.
      * Independence of the heads is assumed, but the heads share the feature extractor and are
        trained jointly; correlated errors do not concentrate, so the bound is optimistic.
      * One accuracy p for all heads, although the setup names a set {p_i}. (Chernoff holds for
        unequal p_i with E[x] = sum p_i, so p may be read as the mean head accuracy.)
      * Correctness on a fixed sample is deterministic for trained heads; treating it as a coin
        with bias p is a modelling assumption, not a consequence of the setup.
      * It bounds a majority vote; the method routes with the trade-off head as a pointer, not
        a vote. And it does not support three heads: at p = 0.9, |S| = 10^4 it asks for 96.
      * If the attacker draws one sample from S, the union bound over S is not needed; a single
        sample needs only n >= 2 ln(1/epsilon) / (p d^2).
      * The logarithm is natural (it comes from exp in the Chernoff bound). Ties (x = n/2)
        count as failures, which only makes the bound safer.

    Args:
        test_size: |S|, the number of test samples (>= 2).
        p: the robust accuracy of a head, 1/2 < p <= 1.
        epsilon: None for eq. 21 as printed; otherwise the allowed attack success probability.
    Returns:
        The smallest integer n >= the bound, and at least 1 (a model has a head).
    """
    if isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 2:
        raise NfiError(f"test_size must be an integer >= 2 (eq. 21 takes log(|S|/2)). "
                       f"Received: test_size={test_size!r}")
    if not isinstance(p, (int, float)) or not (0.5 < p <= 1.0):
        raise NfiError(f"p must satisfy 1/2 < p <= 1: the Chernoff step needs heads that are "
                       f"right more often than not. Received: p={p!r}")
    if epsilon is not None and not (0.0 < epsilon <= 1.0):
        raise NfiError(f"epsilon must be in (0, 1]. Received: epsilon={epsilon!r}")
    ratio = test_size / 2.0 if epsilon is None else test_size / epsilon
    bound = heads_bound(ratio, p)
    # 1e-9 absorbs rounding when the bound is an integer mathematically.
    return max(1, math.ceil(bound - 1e-9))


def heads_bound(ratio: float, p: float) -> float:
    """The real-valued right-hand side 2 ln(ratio) / (p (1 - 1/(2p))^2)."""
    return 2.0 * math.log(ratio) / (p * (1.0 - 1.0 / (2.0 * p)) ** 2)


# === CLI ===


@dataclasses.dataclass(frozen=True)
class TheoryConfig:
    """What `python -m nfi_tf.theory` prints; each field's help is its flag's (flags/theory.py)."""

    test_size: int = dataclasses.field(default=10_000, metadata={
        "help": "|S|: the number of test samples."})
    p: float = dataclasses.field(default=0.9, metadata={
        "help": "Robust accuracy of one head, 1/2 < p <= 1."})
    epsilon: float | None = dataclasses.field(default=None, metadata={
        "help": "Allowed attack success probability: use log(|S|/epsilon) as the derivation "
                "gives, instead of eq. 21's printed log(|S|/2)",
        "none": "none, eq. 21 as printed"})
    table_sizes: tuple[int, ...] = dataclasses.field(default=TABLE_SIZES, metadata={
        "help": "Test-set sizes (rows of the table)."})
    table_accuracies: tuple[float, ...] = dataclasses.field(default=TABLE_ACCURACIES, metadata={
        "help": "Head accuracies (columns of the table).", "flag": "table_p"})


def table(sizes: Sequence[int], accuracies: Sequence[float], epsilon: float | None = None) -> str:
    head = "|S| \\ p".rjust(9) + "".join(f"{p:>8g}" for p in accuracies)
    rows = [head]
    for s in sizes:
        rows.append(f"{s:>9,d}" + "".join(f"{min_heads(s, p, epsilon):>8d}" for p in accuracies))
    return "\n".join(rows)


def report(config: TheoryConfig) -> str:
    n = min_heads(config.test_size, config.p, config.epsilon)
    which = ("eq. 21 as printed: log(|S|/2)" if config.epsilon is None
             else f"eq. 21 with log(|S|/epsilon), epsilon={config.epsilon:g}")
    lines = [
        f"min heads for |S|={config.test_size:,d}, p={config.p:g}: n >= {n}   [{which}]",
        "",
        f"lower bound on the number of heads ({which}; natural log):",
        table(config.table_sizes, config.table_accuracies, config.epsilon),
    ]
    return "\n".join(lines)

