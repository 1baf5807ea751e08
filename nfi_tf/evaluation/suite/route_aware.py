"""The route-aware attacks (routed model only): attacks that see through the routing switch.

One family, `route`, with one run per variant (`RouteVariant`, nfi_tf/evaluation/vocab.py):

- all heads at once: make every head wrong (sum of the capped CW margins of the benign,
  adversarial and trade-off heads): whichever route is then taken, the answer is wrong;
- steered onto a route, once per top wrong class t (`aux`): onto the benign route, the
  trade-off head and both part scores agree on t and the benign head says t; onto the
  adversarial route, the trade-off head and the robust part agree on t, the non-robust part
  does not, and the adversarial head says t;
- the switch relaxed (straight-through, soft) at each temperature: CE of the relaxed routed
  logits (nfi_tf/evaluation/switch.py).

Each ascends its objective with every iterate judged by the hard routed output (JudgedPGD, step
eps/4 halved at 50% and 75% of the steps), so any iterate that fools the served model is kept.
"""

from __future__ import annotations

import numpy as np

from nfi_tf import outputs
from nfi_tf.evaluation import switch
from nfi_tf.evaluation.keys import ROUTE_FAMILY
from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.vocab import Column, RouteKind, RouteVariant, route_variants

CAP = 10.0  # margins are capped so a head already far past the boundary stops dominating
BUDGETS = (
    registry.Budget("route_steps", 100, 50, help="Iterations of each route-aware attack."),
    registry.Budget("route_targets", 3, 3, help="Wrong classes each route-targeted attack tries."),
    registry.Budget("route_temperatures", (0.1, 1.0, 10.0), (0.1, 1.0, 10.0),
                    help="Temperatures of the straight-through and soft switches."),
)


def variants(cfg) -> list[tuple[RouteVariant, int]]:
    """(variant, aux) of every run: a steered attack runs once per top wrong class."""
    out = []
    for v in route_variants(cfg.route_temperatures):
        if v.kind == RouteKind.STEER:
            out += [(v, j + 1) for j in range(cfg.route_targets)]
        else:
            out.append((v, 0))
    return out


# === Objectives: (x, y, aux) -> ([B] objective, judged logits) ===


def _capped(v):
    import tensorflow as tf

    return tf.minimum(v, CAP)


def all_heads(classifier):
    """Sum over heads of min(margin against y, CAP)."""
    import tensorflow as tf

    from nfi_tf.attacks import losses

    def objective(x, y, aux):
        del aux
        out = classifier(x, training=False)
        return tf.add_n([_capped(losses.margin_loss_fn(labels=y, logits=out[h]))
                         for h in outputs.HEADS]), out[outputs.ROUTED]

    return objective


def route_target(classifier, route: str):
    """Steer the switch onto `route` with every deciding score on class t (aux)."""
    import tensorflow as tf

    from nfi_tf.attacks import losses

    RouteVariant.steer(route)  # rejects a route that cannot be steered onto

    def objective(x, y, t):
        del y
        out = classifier(x, training=False)
        agree = (outputs.TRADEOFF, outputs.ROB, outputs.NR, outputs.BENIGN) if route == outputs.BENIGN \
            else (outputs.TRADEOFF, outputs.ROB, outputs.ADVERSARIAL)
        # The training step's route guard steers with the same objective (benign route).
        total = losses.agreement_loss_fn(t, tf.concat([out[name] for name in agree], axis=-1),
                                         num_scores=len(agree), cap=CAP)
        if route == outputs.ADVERSARIAL:  # the non-robust part must disagree for route 1
            total += _capped(losses.margin_loss_fn(labels=t, logits=out[outputs.NR]))
        return total, out[outputs.ROUTED]

    return objective


def relaxed(classifier, mode, temperature: float):
    """CE of the relaxed routed logits."""
    from nfi_tf.attacks import losses

    def objective(x, y, aux):
        del aux
        out = classifier(x, training=False)
        return losses.ce_loss_fn(labels=y, logits=switch.relaxed_logits(out, mode, temperature)), \
            out[outputs.ROUTED]

    return objective


def objective_for(classifier, variant: RouteVariant):
    if variant.kind == RouteKind.ALL_HEADS:
        return all_heads(classifier)
    if variant.kind == RouteKind.STEER:
        return route_target(classifier, variant.route)
    return relaxed(classifier, variant.switch, variant.temperature)


# === Binding: the target of one planned run, and the attack ===


def target(classifier, key):
    """A planned route-aware run's target: its objective, judged by the hard routed output; a
    steered run's aux is the aux-th highest wrong class of the clean trade-off head."""
    from nfi_tf.attacks.apgd import top_other_classes
    from nfi_tf.attacks.base import Target

    aux = None
    if key.aux:
        rank = key.aux

        def aux(x, y):
            clean = np.asarray(classifier(x, training=False)[outputs.TRADEOFF])
            return top_other_classes(clean, y, rank)[:, rank - 1]

    hard = switch.hard_routed(classifier)
    return Target(hard, judge=hard, name=str(key), objective=objective_for(classifier, key.variant),
                  aux=aux)


class RouteAttack:
    def __init__(self, budgets, threat):
        self.budgets, self.threat = budgets, threat
        self._built = registry.PerTarget(self._make)

    def _make(self, target):
        from nfi_tf.attacks.pgd_judged import JudgedPGD

        if target.objective is None:
            raise ValueError(f"a route-aware attack needs a routed target with an objective. "
                             f"Received: target={target.name}")
        return JudgedPGD(target.objective, target.judge_logits, self.threat, self.budgets.route_steps,
                         name=target.name)

    def run(self, x, y, seed, target):
        aux = target.aux(x, y) if target.aux is not None else None
        return self._built(target).run(x, y, seed, aux)


SPEC = registry.AttackSpec(
    name=ROUTE_FAMILY, option=Column.ROUTE_AWARE, title="route-aware", settings_key=Column.ROUTE_AWARE,
    budgets=BUDGETS, routed_only=True, routed_variants=False, variants=variants, build=RouteAttack,
    target=target,
    settings=lambda b, threat: {"steps": b.route_steps, "targets": b.route_targets,
                                "temperatures": list(b.route_temperatures)},
    note=lambda e: ("route-aware (routed model): all heads at once; route-targeted onto the benign and "
                    f"the adversarial route ({e['targets']} wrong classes each); "
                    "straight-through and soft switches at temperatures "
                    f"{', '.join(f'{t:g}' for t in e['temperatures'])}; "
                    f"{e['steps']} steps each, every iterate judged by the hard routed output"))
