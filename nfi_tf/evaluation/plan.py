"""The attack plan: which registered attack runs against which output, in which variant.

A planned attack is an `AttackKey` (keys.py): an attack that tries several target classes
itself (APGD-T, FAB-T) keeps one key, a route-targeted attack gets one key per class
(`route@routed:benign_route#1`). Every adversarial input is scored on every output, so the
table's worst case of an output covers white-box attacks on it and transfers from the others.

On the routed model a gradient attack runs in three variants (suite/nfi_targets.py), each
iterate judged by the hard routed output; the routed column of a family is the per-example
worst case over its variants.
"""

from __future__ import annotations

import dataclasses

from nfi_tf import outputs as output_names
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import suite
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.suite.nfi_targets import ROUTED_VARIANTS

ROWS_NFI = output_names.SCORED_NFI
ROWS_TRADES = output_names.SCORED_TRADES


@dataclasses.dataclass(frozen=True)
class PlannedAttack:
    key: AttackKey
    suite: bool = False  # part of the AutoAttack run: attack only the points still robust

    @property
    def family(self) -> str:
        return self.key.family

    @property
    def target(self) -> str:
        return self.key.target

    @property
    def spec(self) -> suite.AttackSpec:
        return suite.get(self.key.family)


def rows_for(method: str) -> tuple[str, ...]:
    return output_names.scored_for(method)


def _per_output(spec: suite.AttackSpec, rows, in_suite: bool) -> list[PlannedAttack]:
    out = []
    for row in rows:
        if row == output_names.ROUTED and spec.routed_variants:
            out.extend(PlannedAttack(AttackKey(spec.name, row, v), in_suite) for v in ROUTED_VARIANTS)
        else:
            out.append(PlannedAttack(AttackKey(spec.name, row), in_suite))
    return out


def plan(method: str, cfg, routed: bool | None = None) -> list[PlannedAttack]:
    """Every attack to run, in a fixed order, for a model of `method` and the EvalConfig `cfg`
    (its attacks, route-aware variants and attack_outputs; None there: every output)."""
    rows = rows_for(method)
    routed = method == "nfi" if routed is None else routed
    attacks = cfg.attacks
    if cfg.attack_outputs is not None:
        unknown = sorted(set(cfg.attack_outputs) - set(rows))
        if unknown:
            raise NfiError(f"attack_outputs must be among {','.join(rows)} for a {method} model. "
                           f"Received: attack_outputs={','.join(cfg.attack_outputs)}")
        rows = tuple(r for r in rows if r in cfg.attack_outputs)
    in_suite = set(suite.autoattack()) if suite.AUTOATTACK in attacks else set()
    out: list[PlannedAttack] = []
    norm = getattr(cfg, "norm", "linf")
    for spec in suite.specs():  # registry order: PGD, CW, then AutoAttack's order
        if norm not in spec.norms:
            continue  # no version of it for this threat model (the runner notes it)
        if spec.routed_only:
            if spec.option_name in attacks and routed:
                out += [PlannedAttack(AttackKey(spec.name, output_names.ROUTED, v, aux))
                        for v, aux in spec.variants(cfg)]
        elif spec.option_name in attacks and spec.name not in in_suite:
            out += _per_output(spec, rows, False)
    if in_suite:
        suite_specs = [suite.get(n) for n in suite.autoattack() if norm in suite.get(n).norms]
        route_first = [p for p in out if p.spec.routed_only]
        out = [p for p in out if not p.spec.routed_only]
        for spec in suite_specs:
            out += _per_output(spec, rows, True)
        out += route_first
    return out


def column_keys(planned: list[PlannedAttack], column: str, row: str) -> list[AttackKey]:
    """The keys an evaluation table's cell (row, column) is the worst case over.

    autoattack: the suite's attacks on `row` (the table adds the clean record, as AutoAttack
    counts a misclassified clean image as non-robust); route_aware: every route-aware key
    (routed row only); any other family: its own runs against `row` outside the suite.
    """
    if column == suite.AUTOATTACK:
        return [p.key for p in planned if p.suite and p.key.target == row]
    spec = next((s for s in suite.specs() if s.option_name == column), None)
    if spec is None:
        return []
    if spec.routed_only:
        return [p.key for p in planned if p.family == spec.name] if row == output_names.ROUTED else []
    return [p.key for p in planned if p.family == spec.name and p.key.target == row and not p.suite]


def planned_from_keys(keys, suite_keys) -> list[PlannedAttack]:
    """The plan a stored record was made with (eval.npz keys and eval.json's suite_keys)."""
    suite_set = {str(k) for k in suite_keys}
    return [PlannedAttack(k, str(k) in suite_set) for k in keys if isinstance(k, AttackKey)]
