"""The attack plan: which attack runs against which output, in which variant.

A planned attack has a key `family@target[:variant]`; an attack that tries several target
classes itself (APGD-T, FAB-T) keeps one key, a route-targeted attack gets one key per class
(`route@routed:benign_route#1`). Every adversarial input is scored on every output, so the
table's worst case of an output covers white-box attacks on it and transfers from the others.

On the routed model a gradient attack runs in three variants (docs/method.md §4), each iterate
judged by the hard routed output: `hard` (gradient of the head the switch selects), `st`
(straight-through: that gradient plus the switch weights'), `soft` (the soft mixture). The
routed column of a family is the per-example worst case over its variants.
"""

from __future__ import annotations

import dataclasses

from nfi_tf import outputs as output_names
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.config import AUTOATTACK_SUITE
from nfi_tf.evaluation.route_aware import ROUTES

ROWS_NFI = output_names.SCORED_NFI
ROWS_TRADES = output_names.SCORED_TRADES
GRADIENT_FAMILIES = ("pgd", "cw", "apgd_ce", "apgd_t", "fab_t")
STANDARD_FAMILIES = GRADIENT_FAMILIES + ("square",)
ROUTED_VARIANTS = ("hard", "st", "soft")


@dataclasses.dataclass(frozen=True)
class PlannedAttack:
    family: str  # one of STANDARD_FAMILIES, or "route"
    target: str  # the output attacked (a row name)
    variant: str | None = None  # routed model: hard / st / soft, or the route-aware attack's name
    suite: bool = False  # part of the AutoAttack run: attack only the points still robust
    aux: int = 0  # route-targeted: which of the top wrong classes (1-based)

    @property
    def key(self) -> str:
        key = f"{self.family}@{self.target}"
        if self.variant:
            key += f":{self.variant}"
        if self.aux:
            key += f"#{self.aux}"
        return key


def rows_for(method: str) -> tuple[str, ...]:
    return output_names.scored_for(method)


def route_variants(temperatures) -> list[str]:
    """The route-aware attacks' names, in the order they run."""
    names = ["all_heads"] + [f"{r}_route" for r in ROUTES]
    names += [f"st_T{t:g}" for t in temperatures] + [f"soft_T{t:g}" for t in temperatures]
    return names


def _per_output(family: str, rows, suite: bool) -> list[PlannedAttack]:
    out = []
    for row in rows:
        if row == "routed" and family != "square":  # Square only needs the served output
            out.extend(PlannedAttack(family, row, v, suite) for v in ROUTED_VARIANTS)
        else:
            out.append(PlannedAttack(family, row, None, suite))
    return out


def plan(method: str, attacks: tuple[str, ...], route_targets: int = 3,
         temperatures=(0.1, 1.0, 10.0), outputs: tuple[str, ...] | None = None) -> list[PlannedAttack]:
    """Every attack to run, in a fixed order, for a model of `method` and the requested families;
    `outputs` limits which outputs the white-box attacks target (None: all of them)."""
    rows = rows_for(method)
    if outputs is not None:
        unknown = sorted(set(outputs) - set(rows))
        if unknown:
            raise NfiError(f"attack_outputs must be among {','.join(rows)} for a {method} model. "
                           f"Received: attack_outputs={','.join(outputs)}")
        rows = tuple(r for r in rows if r in outputs)
    out: list[PlannedAttack] = []
    for family in ("pgd", "cw"):
        if family in attacks:
            out += _per_output(family, rows, False)
    for family in AUTOATTACK_SUITE:
        if family in attacks and "autoattack" not in attacks:
            out += _per_output(family, rows, False)
    if "autoattack" in attacks:
        for family in AUTOATTACK_SUITE:  # AutoAttack's order: cheap and strong first
            out += _per_output(family, rows, True)
    if "route_aware" in attacks and method == "nfi":
        for name in route_variants(temperatures):
            if name.endswith("_route"):
                out += [PlannedAttack("route", "routed", name, aux=j + 1) for j in range(route_targets)]
            else:
                out.append(PlannedAttack("route", "routed", name))
    return out


def keys_of_column(keys, family: str, target: str) -> list[str]:
    """The keys of `family` run against `target`, over every variant and target class."""
    base = f"{family}@{target}"
    return [k for k in keys if k == base or k.startswith(base + ":") or k.startswith(base + "#")]


def column_keys(keys, family: str, row: str, suite_keys) -> list[str]:
    """The record keys an evaluation table's cell (row, column family) is the worst case over.

    autoattack: the suite's attacks on `row` (the table adds the clean key, as AutoAttack counts
    a misclassified clean image as non-robust); route_aware: every route-aware key (routed row
    only); any other family: its own runs against `row` outside the suite.
    """
    if family == "autoattack":
        return [k for k in keys if k in suite_keys and keys_of_column([k], k.split("@")[0], row)]
    if family == "route_aware":
        return [k for k in keys if k.startswith("route@")] if row == "routed" else []
    return [k for k in keys_of_column(keys, family, row) if k not in suite_keys]
