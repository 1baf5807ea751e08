"""The attack plan: which attack runs against which output, adaptive attacks on the routed model.

A hard switch can make PGD through it look strong only because the gradient cannot see the
switch (docs/method.md §4). So the routed model is
attacked through a straight-through switch by every standard attack (PGD, CW, APGD-CE,
APGD-DLR), through a soft (temperature) switch, and by transfer from every head; its robust
accuracy is the per-example worst case over all of them (worst_case.py). PGD through the hard
switch ("naive") is run too, so that the gap to the adaptive number is visible.

Each planned attack has a key `family@target`; targeted APGD-DLR expands into one key per
target class, `apgd_dlr@target#j`.
"""

from __future__ import annotations

import dataclasses

ROWS_NFI = ("routed", "tradeoff", "benign", "adversarial", "robust_part", "nonrobust_part")
ROWS_TRADES = ("tradeoff", "robust_part", "nonrobust_part")
STANDARD_FAMILIES = ("pgd", "cw", "apgd_ce", "apgd_dlr")
ROUTED_ONLY_FAMILIES = ("pgd_naive", "pgd_soft")


@dataclasses.dataclass(frozen=True)
class PlannedAttack:
    family: str  # pgd, cw, apgd_ce, apgd_dlr, pgd_naive, pgd_soft
    target: str  # the output attacked (a row name)
    switch_mode: str = "straight_through"  # for target == "routed": hard, soft, straight_through

    @property
    def key(self) -> str:
        return f"{self.family}@{self.target}"


def rows_for(method: str) -> tuple[str, ...]:
    return ROWS_NFI if method == "nfi" else ROWS_TRADES


def plan(method: str, attacks: tuple[str, ...]) -> list[PlannedAttack]:
    """Every attack to run, in a fixed order, for a model of `method` and the requested families.

    `adaptive` (nfi only) adds the naive hard-switch PGD and the soft-switch PGD on the routed
    model, and implies PGD on every output (the per-head attacks the routed model's worst case
    takes as transfers).
    """
    rows = rows_for(method)
    adaptive = "adaptive" in attacks and method == "nfi"
    out = []
    for family in STANDARD_FAMILIES:
        if family in attacks or (family == "pgd" and adaptive):
            out.extend(PlannedAttack(family, row) for row in rows)
    if adaptive:
        out.append(PlannedAttack("pgd_naive", "routed", "hard"))
        out.append(PlannedAttack("pgd_soft", "routed", "soft"))
    return out
