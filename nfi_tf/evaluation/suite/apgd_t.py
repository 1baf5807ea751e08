"""APGD-T: AutoAttack's second attack, targeted APGD on the targeted DLR loss, one run per target
class (the highest-scoring other classes). Needs at least 4 classes (the DLR loss reads the
third-highest logit)."""

from __future__ import annotations

from nfi_tf.evaluation.suite import apgd_ce, registry
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm

BUDGETS = (
    registry.Budget("apgd_targets", 9, 3, label="APGD-T", unit="targets", per_class=True,
                    help="APGD-T target classes (AutoAttack's standard version: 9, capped at C - 1)."),
)

SPEC = registry.AttackSpec(
    name=Column.APGD_T, title="APGD-T", settings_key=apgd_ce.SETTINGS_ENTRY, budgets=BUDGETS,
    reads=("apgd_steps", "apgd_restarts"), suite_position=1, norms=(Norm.LINF, Norm.L2),
    min_classes=4, min_classes_why="its targeted DLR loss",
    build=lambda budgets, threat: apgd_ce.APGDAttack(budgets, threat, "targeted_dlr"),
    settings=apgd_ce.settings,
    note=lambda e: f"APGD-T: targeted DLR, {e['targets']} target classes, {e['steps']} iterations each")
