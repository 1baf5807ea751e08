"""Named evaluation budgets: the attack budgets a run is evaluated with, by name.

    standard    AutoAttack's standard version (EvalConfig's defaults)
    cpu         the CPU-scale budget the reproduction runs (reports state it)
    quickstart  the cpu budget with one target per route-aware attack (scripts/quickstart.sh)
    quick       a tiny budget: the reproduction's pipeline end to end in minutes (--quick)

`standard` and `cpu` are the attack registry's (nfi_tf/evaluation/suite: each attack declares its
own standard and CPU values); the others are written here as changes to one of them, so no
budget number is written twice. A budget is a dict of EvalConfig field values.
"""

from __future__ import annotations

from typing import Any

from nfi_tf.evaluation import suite

# (the budget it starts from, what it changes)
_DERIVED: dict[str, tuple[str, dict[str, Any]]] = {
    # One wrong class per route-targeted attack: the quickstart's evaluation stays under ~15 min.
    "quickstart": ("cpu", {"route_targets": 1}),
    "quick": ("standard", {"apgd_steps": 5, "apgd_targets": 2, "fab_steps": 5, "fab_targets": 2,
                           "square_queries": 20, "route_steps": 3, "route_targets": 1,
                           "route_temperatures": (1.0,)}),
}
NAMES = suite.registry.BUDGET_NAMES + tuple(_DERIVED)


def budget(name: str) -> dict[str, Any]:
    """A named budget as EvalConfig field values (every budget field of the registry)."""
    if name in _DERIVED:
        base, changes = _DERIVED[name]
        return {**suite.budget(base), **changes}
    if name not in NAMES:
        raise ValueError(f"budget must be one of {', '.join(NAMES)}. Received: budget={name!r}")
    return suite.budget(name)


def from_standard(name: str) -> dict[str, Any]:
    """The fields where a budget differs from the standard one (what its flags must set), in the
    registry's order."""
    values, standard = budget(name), suite.budget("standard")
    return {k: v for k, v in values.items() if v != standard[k]}
