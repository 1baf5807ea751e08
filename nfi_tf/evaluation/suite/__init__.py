"""The evaluation's attacks, one module each, registered in run order (registry.py).

    pgd.py          PGD-CE (TRADES' evaluation)
    cw.py           CW-Linf
    apgd_ce.py      AutoAttack 1: APGD-CE
    apgd_t.py       AutoAttack 2: APGD-T
    fab_t.py        AutoAttack 3: FAB-T
    square.py       AutoAttack 4: Square (gradient-free)
    route_aware.py  the route-aware attacks on the routed model

Adding an attack: write its module with a `SPEC`, register it (`registry.register(SPEC)`), add
its test (docs/conventions.md, "An attack").
"""

from nfi_tf.evaluation.suite import apgd_ce, apgd_t, cw, fab_t, pgd, registry, route_aware, square
from nfi_tf.evaluation.suite.registry import (
    AttackSpec,
    Budget,
    autoattack,
    budget,
    get,
    register,
    registered,
    specs,
    standard,
    unregister,
)

for _module in (pgd, cw, apgd_ce, apgd_t, fab_t, square, route_aware):
    registry.register(_module.SPEC)

__all__ = ["AttackSpec", "Budget", "autoattack", "budget", "get", "register", "registered", "specs",
           "standard", "unregister"]
