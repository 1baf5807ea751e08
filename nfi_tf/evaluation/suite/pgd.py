"""PGD-CE (TRADES' evaluation): untargeted L-inf PGD on cross-entropy from a uniform random start.

On one output it is CleverHans' PGD through the one PGD core (`nfi_tf.attacks.pgd_core`), the
last iterate, as TRADES evaluates. On a judged target (the routed model: the switch has no
gradient) every iterate is judged by the served output and any iterate that fools it is kept
(nfi_tf.attacks.pgd_judged), same constant step.
Eps, step and steps: the dataset preset's (MNIST 0.3/0.01/40, CIFAR-10 0.031/0.003/20) or the flags.
"""

from __future__ import annotations

import dataclasses

from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.vocab import Column


class PGDAttack:
    """PGD with a given loss (cross-entropy here; the CW margin in cw.py)."""

    def __init__(self, cfg, threat, loss_fn):
        self.cfg, self.threat, self.loss_fn = cfg, threat, loss_fn
        self._built = registry.PerTarget(self._make)

    def _make(self, target):
        if not target.judged:  # TRADES' evaluation: CleverHans PGD, the last iterate
            return self._last_iterate(target)
        from nfi_tf.attacks.pgd_judged import JudgedPGD

        loss_fn, joint = self.loss_fn, target.joint

        def objective(z, y, aux):
            del aux
            if joint is None:
                return loss_fn(labels=y, logits=target.logits(z)), target.judge_logits(z)
            logits, judged = joint(z)
            return loss_fn(labels=y, logits=logits), judged

        attack = JudgedPGD(objective, target.judge_logits,
                           dataclasses.replace(self.threat, step_size=self.cfg.step_size),
                           self.cfg.num_steps, name=target.name, schedule="constant")
        return lambda x, y, seed: attack.run(x, y, seed)

    def _last_iterate(self, target):
        import tensorflow as tf

        from nfi_tf.attacks import pgd_core

        @tf.function(reduce_retracing=True)
        def run(x, y, seed):
            return pgd_core.pgd(target.logits, x, y, self.loss_fn, self.cfg, seed, "uniform")

        return lambda x, y, seed: run(tf.constant(x), tf.constant(y),
                                      tf.constant([seed, 0], tf.int64)).numpy()

    def run(self, x, y, seed, target):
        return self._built(target)(x, y, seed)


def _build(budgets, threat):
    from nfi_tf.attacks import losses

    return PGDAttack(budgets.pgd, threat, losses.ce_loss_fn)


def _settings(budgets, threat):
    del threat
    return {"step_size": budgets.pgd.step_size, "steps": budgets.pgd.num_steps,
            "random_start": "uniform", "loss": "cross-entropy"}


SPEC = registry.AttackSpec(
    name=Column.PGD, title="PGD-{pgd_steps}", build=_build, settings=_settings,
    note=lambda e: (f"PGD-{e['steps']}: cross-entropy, step {e['step_size']:g}, "
                    "uniform random start (TRADES' evaluation)"))
