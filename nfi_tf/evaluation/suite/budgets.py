"""`Budgets`: every registered budget setting resolved for one evaluation (recorded in eval.json).

PGD's eps, step and steps come from the dataset preset (TRADES' evaluation) unless a flag sets
them; every other setting is an EvalConfig field declared by the attack that reads it
(registry.Budget). Numbers of target classes are capped at num_classes - 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from nfi_tf.config import AttackConfig
from nfi_tf.evaluation.suite import registry


@dataclasses.dataclass(frozen=True)
class Budgets:
    pgd: AttackConfig  # eps, step size and steps of PGD (and CW's defaults)
    values: Mapping[str, Any]  # every registered budget field -> its value for this run
    batch_size: int = 200
    num_classes: int = 10

    @classmethod
    def of(cls, cfg, pgd: AttackConfig, num_classes: int) -> Budgets:
        values = {}
        for b in registry.budgets():
            v = getattr(cfg, b.field)
            values[b.field] = min(v, num_classes - 1) if b.per_class else v
        return cls(pgd=pgd, values=values, batch_size=int(cfg.batch_size), num_classes=int(num_classes))

    def __getitem__(self, field: str):
        return self.values[field]

    def __getattr__(self, field: str):
        # budgets.apgd_steps reads like the field it is (dataclass fields are found first)
        values = self.__dict__.get("values")
        if values is not None and field in values:
            return values[field]
        raise AttributeError(field)
