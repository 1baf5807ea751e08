"""APGD-CE: AutoAttack's first attack, APGD on cross-entropy (native TF, nfi_tf.attacks.apgd).

Declares the APGD budgets that APGD-T shares (iterations, restarts).
"""

from __future__ import annotations

from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm

BUDGETS = (
    registry.Budget("apgd_steps", 100, 50, label="APGD", unit="iterations",
                    help="APGD iterations per run (AutoAttack's standard version: 100)."),
    registry.Budget("apgd_restarts", 1, 1, help="APGD restarts (AutoAttack's standard version: 1)."),
)
SETTINGS_ENTRY = "apgd"  # eval.json's settings entry, shared with APGD-T


class APGDAttack:
    def __init__(self, budgets, threat, loss: str):
        self.budgets, self.threat, self.loss = budgets, threat, loss
        self._built = registry.PerTarget(self._make)

    def _make(self, target):
        from nfi_tf.attacks.apgd import APGD

        b = self.budgets
        return APGD(target, self.threat, self.loss, b.apgd_steps, b.apgd_restarts,
                    b.apgd_targets, batch_size=b.batch_size)

    def run(self, x, y, seed, target):
        return self._built(target).run(x, y, seed)


def settings(budgets, threat):
    return {"steps": budgets.apgd_steps, "restarts": budgets.apgd_restarts,
            "targets": budgets.apgd_targets, "initial_step": 2 * threat.epsilon,
            "implementation": "nfi_tf.attacks.apgd"}


SPEC = registry.AttackSpec(
    name=Column.APGD_CE, title="APGD-CE", settings_key=SETTINGS_ENTRY, budgets=BUDGETS,
    suite_position=0, norms=(Norm.LINF, Norm.L2),
    build=lambda budgets, threat: APGDAttack(budgets, threat, "ce"), settings=settings,
    note=lambda e: (f"APGD-CE: {e['steps']} iterations, {e['restarts']} restart(s), "
                    "AutoAttack's algorithm (native TF, best iterate)"))
