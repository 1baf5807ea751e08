"""CW-Linf: PGD on the Carlini-Wagner margin loss, capped at a confidence (TRADES caps it at 50).

Same runs as PGD (suite/pgd.py) with the margin loss; steps default to PGD's.
"""

from __future__ import annotations

import dataclasses
import functools

from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.suite.pgd import PGDAttack
from nfi_tf.evaluation.vocab import Column

BUDGETS = (
    registry.Budget("cw_steps", None, None, help="CW-Linf iterations (default: as PGD's)."),
    registry.Budget("cw_confidence", 50.0, 50.0,
                    help="CW-Linf margin cap (TRADES' CW evaluation caps the margin at 50)."),
)


def _config(budgets):
    return dataclasses.replace(budgets.pgd, num_steps=int(budgets.cw_steps or budgets.pgd.num_steps))


def _build(budgets, threat):
    from nfi_tf.attacks import losses

    loss = functools.partial(losses.cw_loss_fn, confidence=budgets.cw_confidence)
    return PGDAttack(_config(budgets), threat, loss)


def _settings(budgets, threat):
    del threat
    cfg = _config(budgets)
    return {"step_size": cfg.step_size, "steps": cfg.num_steps, "confidence": budgets.cw_confidence}


SPEC = registry.AttackSpec(
    name=Column.CW, title="CW-Linf", build=_build, settings=_settings, budgets=BUDGETS,
    note=lambda e: f"CW-Linf: PGD on the CW margin (confidence {e['confidence']:g}), {e['steps']} steps")
