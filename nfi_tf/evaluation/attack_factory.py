"""Turn each planned attack into a runner `(x, y, seed, clean) -> x_adv` over the attack core.

Every attack comes from `nfi_tf.attacks`: PGD on a single output is CleverHans' PGD as TRADES
evaluates (last iterate); every attack on the routed model, whatever its family, runs with the
hard routed output as its judge, so any iterate that fools the served model is kept.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from nfi_tf.attacks import losses
from nfi_tf.attacks.apgd import APGD, top_other_classes
from nfi_tf.attacks.base import Target
from nfi_tf.attacks.fab import FABTargeted
from nfi_tf.attacks.pgd_judged import JudgedPGD
from nfi_tf.attacks.square import Square, keras_query
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.config import AttackConfig
from nfi_tf.evaluation import attacks_pgd, route_aware
from nfi_tf.evaluation.config import EvalConfig
from nfi_tf.evaluation.plan import PlannedAttack

Runner = Callable[[np.ndarray, np.ndarray, int, dict], np.ndarray]
VARIANT_MODES = {"st": "straight_through", "soft": "soft"}


@dataclasses.dataclass(frozen=True)
class Budgets:
    """The resolved attack settings the factory builds from (recorded in eval.json)."""

    pgd: AttackConfig
    cw: AttackConfig
    cw_confidence: float
    apgd_steps: int
    apgd_restarts: int
    apgd_targets: int
    fab_steps: int
    fab_targets: int
    square_queries: int
    route_steps: int
    batch_size: int

    @classmethod
    def of(cls, cfg: EvalConfig, pgd: AttackConfig, num_classes: int) -> Budgets:
        return cls(pgd=pgd, cw=dataclasses.replace(pgd, num_steps=int(cfg.cw_steps or pgd.num_steps)),
                   cw_confidence=cfg.cw_confidence, apgd_steps=cfg.apgd_steps,
                   apgd_restarts=cfg.apgd_restarts,
                   apgd_targets=min(cfg.apgd_targets, num_classes - 1), fab_steps=cfg.fab_steps,
                   fab_targets=min(cfg.fab_targets, num_classes - 1),
                   square_queries=cfg.square_queries, route_steps=cfg.route_steps,
                   batch_size=cfg.batch_size)


def int_seed(seed: int, key: str, batch: int) -> int:
    """One int per (seed, attack key, batch): the attacks' stateless draws are keyed by it."""
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode()) * 4099 + int(batch)) % (2**31 - 1)


def _target(classifier, p: PlannedAttack) -> Target:
    """Gradient logits and judge of a planned attack's output."""
    if p.target != "routed":
        return Target(lambda z: classifier(z, training=False)[p.target])
    hard = route_aware.hard_routed(classifier)
    if p.variant in (None, "hard"):
        return Target(hard)
    mode = VARIANT_MODES[p.variant]
    return Target(lambda z: route_aware.relaxed_logits(classifier(z, training=False), mode, 1.0), hard)


def _routed_objective(classifier, variant: str | None, loss_fn):
    """loss of the variant's routed logits, and the hard routed logits, from one forward pass."""

    def objective(z, y, aux):
        del aux
        out = classifier(z, training=False)
        if variant in (None, "hard"):
            logits = out["routed"]
        else:
            logits = route_aware.relaxed_logits(out, VARIANT_MODES[variant], 1.0)
        return loss_fn(labels=y, logits=logits), out["routed"]

    return objective


def build(p: PlannedAttack, classifier, budgets: Budgets, threat: ThreatModel) -> Runner:
    """The runner of one planned attack."""
    if p.family == "route":
        return _route_runner(p, classifier, budgets, threat)
    target = _target(classifier, p)
    if p.family in ("pgd", "cw"):
        cfg = budgets.cw if p.family == "cw" else budgets.pgd
        loss_fn = (functools.partial(losses.cw_loss_fn, confidence=budgets.cw_confidence)
                   if p.family == "cw" else losses.ce_loss_fn)
        if p.target != "routed":  # TRADES' evaluation: CleverHans PGD, the last iterate
            fn = attacks_pgd.make_pgd_attack(target.logits, loss_fn, cfg)
            return lambda x, y, seed, clean: fn(tf.constant(x), tf.constant(y),
                                                tf.constant([seed, 0], tf.int64)).numpy()
        attack = JudgedPGD(_routed_objective(classifier, p.variant, loss_fn), target.judge_logits,
                           dataclasses.replace(threat, step_size=cfg.step_size), cfg.num_steps,
                           name=p.key, schedule="constant")
        return lambda x, y, seed, clean: attack.run(x, y, seed)
    if p.family in ("apgd_ce", "apgd_t"):
        attack = APGD(target, threat, "ce" if p.family == "apgd_ce" else "targeted_dlr",
                      budgets.apgd_steps, budgets.apgd_restarts, budgets.apgd_targets,
                      batch_size=budgets.batch_size)
        return lambda x, y, seed, clean: attack.run(x, y, seed)
    if p.family == "fab_t":
        attack = FABTargeted(target, threat, budgets.fab_steps, 1, budgets.fab_targets)
        return lambda x, y, seed, clean: attack.run(x, y, seed)
    if p.family == "square":
        attack = Square(keras_query(target.judge_logits, budgets.batch_size), threat,
                        budgets.square_queries)
        return lambda x, y, seed, clean: attack.run(x, y, seed)
    raise ValueError(f"unknown attack family. Received: family={p.family!r}")


def _route_runner(p: PlannedAttack, classifier, budgets: Budgets, threat: ThreatModel) -> Runner:
    name = p.variant
    if name == "all_heads":
        objective = route_aware.all_heads(classifier)
    elif name.endswith("_route"):
        objective = route_aware.route_target(classifier, name[: -len("_route")])
    else:
        mode, t = name.split("_T")
        objective = route_aware.relaxed(classifier, {"st": "straight_through", "soft": "soft"}[mode],
                                        float(t))
    attack = JudgedPGD(objective, route_aware.hard_routed(classifier), threat, budgets.route_steps,
                       name=p.key)

    def run(x, y, seed, clean):
        aux = None
        if p.aux:  # the aux-th highest wrong class of the clean trade-off head
            aux = top_other_classes(clean["tradeoff"], y, p.aux)[:, p.aux - 1]
        return attack.run(x, y, seed, aux)

    return run


def onnx_square(query, budgets: Budgets, threat: ThreatModel) -> Runner:
    """Square against the exported model's routed output, through ONNX Runtime."""
    attack = Square(query, threat, budgets.square_queries)
    return lambda x, y, seed, clean: attack.run(x, y, seed)
