"""`AttackTarget`: the output under attack, as the functions an attack needs.

Every registered attack runs as `attack.run(x, y, seed, target)`. The target says what to
differentiate (`logits`), what decides whether an input is fooled (`judge`, the served output;
default `logits`), and, for attacks that need them, a one-forward-pass `joint` (images ->
(logits, judge logits)), a custom `objective` (the route-aware attacks: (images, labels, aux) ->
(objective, judge logits)) and `aux` (per-example target classes from the clean inputs).
`name` is the attack key's text: part of the attack's random seed, so a run is a function of
(seed, key, batch).

`plain(logits_fn)` is the target of any classifier that returns logits; the routed model's
outputs are built by `nfi_targets` (suite/nfi_targets.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from nfi_tf import outputs

LogitsFn = Callable  # images tensor -> logits tensor


@dataclasses.dataclass(frozen=True, eq=False)
class AttackTarget:
    name: str
    logits: LogitsFn
    judge: LogitsFn | None = None
    joint: Callable | None = None
    objective: Callable | None = None
    aux: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    query: Callable[[np.ndarray], np.ndarray] | None = None  # numpy judge (e.g. ONNX Runtime)

    @property
    def judged(self) -> bool:
        """True when every iterate is judged by the served output (and any that fools it is
        kept): a separate judge, a joint forward or an objective (the routed model's targets)."""
        return self.judge is not None or self.joint is not None or self.objective is not None

    def judge_logits(self, x):
        return (self.judge or self.logits)(x)

    def core(self):
        """The attack core's view (nfi_tf.attacks.base.Target)."""
        from nfi_tf.attacks.base import Target

        return Target(self.logits, self.judge)


def plain(logits_fn: LogitsFn, name: str = outputs.LOGITS) -> AttackTarget:
    """Any classifier: images -> logits, judged by its own argmax."""
    return AttackTarget(name=name, logits=logits_fn)


class PerTarget:
    """Builds an attack's compiled pieces once per target (targets are built once per planned
    attack, so this is one trace per attack key, as before)."""

    def __init__(self, make: Callable[[AttackTarget], Callable]):
        self._make, self._built = make, {}

    def __call__(self, target: AttackTarget) -> Callable:
        key = id(target)
        if key not in self._built:
            self._built[key] = (target, self._make(target))  # keep target alive: ids stay unique
        return self._built[key][1]
