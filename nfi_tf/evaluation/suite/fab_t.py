"""FAB-T: AutoAttack's third attack, targeted FAB (minimum-norm), one run per target class.

L-inf and L2 (the threat's norm): the projections onto the linearized boundary, the restarts'
random start and the distances it minimizes are the norm's (nfi_tf.attacks.fab)."""

from __future__ import annotations

from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm

BUDGETS = (
    registry.Budget("fab_steps", 100, 50, label="FAB-T", unit="iterations",
                    help="FAB-T iterations per target (AutoAttack's standard version: 100)."),
    registry.Budget("fab_targets", 9, 3, label="FAB-T", unit="targets", per_class=True,
                    help="FAB-T target classes (AutoAttack's standard version: 9, capped at C - 1)."),
)


class FABAttack:
    def __init__(self, budgets, threat):
        self.budgets, self.threat = budgets, threat
        self._built = registry.PerTarget(self._make)

    def _make(self, target):
        from nfi_tf.attacks.fab import FABTargeted

        return FABTargeted(target, self.threat, self.budgets.fab_steps, 1, self.budgets.fab_targets)

    def run(self, x, y, seed, target):
        return self._built(target).run(x, y, seed)


def _note(entry):
    line = f"FAB-T: {entry['targets']} target classes, {entry['steps']} iterations each"
    # Records written before FAB-T had an L2 version have no norm in their entry: L-inf.
    return line + (" (L2 projections)" if entry.get("norm", Norm.LINF) == Norm.L2 else "")


SPEC = registry.AttackSpec(
    name=Column.FAB_T, title="FAB-T", budgets=BUDGETS, suite_position=2, norms=(Norm.LINF, Norm.L2),
    build=FABAttack,
    settings=lambda b, threat: {"steps": b.fab_steps, "targets": b.fab_targets, "norm": threat.norm},
    note=_note)
