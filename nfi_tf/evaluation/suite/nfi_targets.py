"""The targets of an nfi (or TRADES) model's outputs, one per planned attack key.

A single output (a head, a part score) is a plain target: its logits, judged by themselves.
The routed output's switch has no gradient, so a gradient attack on it runs in three variants,
each judged by the hard routed output (docs/method.md §4): `hard` (the selected head's gradient),
`st` (straight-through: that gradient plus the switch weights') and `soft` (the soft mixture).
The route-aware family's variants are objectives (nfi_tf.evaluation.route_aware).
"""

from __future__ import annotations

import numpy as np

from nfi_tf import outputs
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.suite import route_aware as route_family
from nfi_tf.evaluation.suite.target import AttackTarget

ROUTED_VARIANTS = ("hard", "st", "soft")
RELAXATIONS = {"st": "straight_through", "soft": "soft"}


def target_for(classifier, key: AttackKey) -> AttackTarget:
    from nfi_tf.evaluation import route_aware

    name = str(key)
    if key.family == route_family.SPEC.name:
        return _route_target(classifier, key)
    if key.target != outputs.ROUTED:
        return AttackTarget(name, lambda z: classifier(z, training=False)[key.target])
    hard = route_aware.hard_routed(classifier)
    if key.variant in ("", "hard"):
        def joint(z):
            routed = classifier(z, training=False)[outputs.ROUTED]
            return routed, routed

        return AttackTarget(name, hard, joint=joint)  # judge: the logits themselves
    mode = RELAXATIONS[key.variant]

    def relaxed(z):
        return route_aware.relaxed_logits(classifier(z, training=False), mode, 1.0)

    def joint_relaxed(z):
        out = classifier(z, training=False)
        return route_aware.relaxed_logits(out, mode, 1.0), out[outputs.ROUTED]

    return AttackTarget(name, relaxed, judge=hard, joint=joint_relaxed)


def _route_target(classifier, key: AttackKey) -> AttackTarget:
    from nfi_tf.attacks.apgd import top_other_classes
    from nfi_tf.evaluation import route_aware

    name, variant = str(key), key.variant
    if variant == "all_heads":
        objective = route_aware.all_heads(classifier)
    elif variant.endswith("_route"):
        objective = route_aware.route_target(classifier, variant[: -len("_route")])
    else:
        mode, t = variant.split("_T")
        objective = route_aware.relaxed(classifier, RELAXATIONS[mode], float(t))
    aux = None
    if key.aux:  # the aux-th highest wrong class of the clean trade-off head
        rank = key.aux

        def aux(x, y):
            clean = np.asarray(classifier(x, training=False)[outputs.TRADEOFF])
            return top_other_classes(clean, y, rank)[:, rank - 1]

    hard = route_aware.hard_routed(classifier)
    return AttackTarget(name, hard, judge=hard, objective=objective, aux=aux)
