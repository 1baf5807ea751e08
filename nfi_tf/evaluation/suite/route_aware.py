"""The route-aware attacks (routed model only): attacks that see through the routing switch.

One family, `route`, with one run per variant: all heads at once; route-targeted onto the
benign and the adversarial route (one run per top wrong class, `aux`); straight-through and
soft switches at several temperatures. Each ascends its objective (nfi_tf.evaluation.route_aware,
supplied by the target) with every iterate judged by the hard routed output (JudgedPGD, step
eps/4 halved at 50% and 75% of the steps).
"""

from __future__ import annotations

from nfi_tf import outputs
from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.suite.target import PerTarget

ROUTES = (outputs.BENIGN, outputs.ADVERSARIAL)
BUDGETS = (
    registry.Budget("route_steps", 100, 50, help="Iterations of each route-aware attack."),
    registry.Budget("route_targets", 3, 3, help="Wrong classes each route-targeted attack tries."),
    registry.Budget("route_temperatures", (0.1, 1.0, 10.0), (0.1, 1.0, 10.0),
                    help="Temperatures of the straight-through and soft switches."),
)


def variant_names(temperatures) -> list[str]:
    """The route-aware attacks' names, in the order they run."""
    names = ["all_heads"] + [f"{r}_route" for r in ROUTES]
    names += [f"st_T{t:g}" for t in temperatures] + [f"soft_T{t:g}" for t in temperatures]
    return names


def variants(cfg) -> list[tuple[str, int]]:
    """(variant, aux) of every run: a route-targeted attack runs once per top wrong class."""
    out = []
    for name in variant_names(cfg.route_temperatures):
        if name.endswith("_route"):
            out += [(name, j + 1) for j in range(cfg.route_targets)]
        else:
            out.append((name, 0))
    return out


class RouteAttack:
    def __init__(self, budgets, threat):
        self.budgets, self.threat = budgets, threat
        self._built = PerTarget(self._make)

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
    name="route", option="route_aware", title="route-aware", settings_key="route_aware",
    budgets=BUDGETS, routed_only=True, routed_variants=False, variants=variants, build=RouteAttack,
    settings=lambda b, threat: {"steps": b.route_steps, "targets": b.route_targets,
                                "temperatures": list(b.route_temperatures)},
    note=lambda s: ("route-aware (routed model): all heads at once; route-targeted onto the benign and "
                    f"the adversarial route ({s['route_aware']['targets']} wrong classes each); "
                    "straight-through and soft switches at temperatures "
                    f"{', '.join(f'{t:g}' for t in s['route_aware']['temperatures'])}; "
                    f"{s['route_aware']['steps']} steps each, every iterate judged by the hard routed "
                    "output"))
