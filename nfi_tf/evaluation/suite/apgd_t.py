"""APGD-T: AutoAttack's second attack, targeted APGD on the targeted DLR loss, one run per target
class (the highest-scoring other classes). Needs at least 4 classes (the DLR loss reads the
third-highest logit)."""

from __future__ import annotations

from nfi_tf.evaluation.suite import apgd_ce, registry

BUDGETS = (
    registry.Budget("apgd_targets", 9, 3, label="APGD-T", unit="targets", per_class=True,
                    help="APGD-T target classes (AutoAttack's standard version: 9, capped at C - 1)."),
)
MIN_CLASSES = 4

SPEC = registry.AttackSpec(
    name="apgd_t", title="APGD-T", settings_key="apgd", budgets=BUDGETS,
    reads=("apgd_steps", "apgd_restarts"), suite_position=1, norms=("linf", "l2"),
    build=lambda budgets, threat: apgd_ce.APGDAttack(budgets, threat, "targeted_dlr"),
    settings=apgd_ce.settings,
    note=lambda s: (f"APGD-T: targeted DLR, {s['apgd']['targets']} target classes, "
                    f"{s['apgd']['steps']} iterations each"))
