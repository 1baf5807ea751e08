"""The plan: which registered attack runs against which output, in which variant, and the built
attacks and targets that run it — one setup for the command line and `evaluate_classifier`.

A planned attack is an `AttackKey` (keys.py): an attack that tries several target classes
itself (APGD-T, FAB-T) keeps one key, a route-targeted attack gets one key per class
(`route@routed:benign_route#1`). Every adversarial input is scored on every output, so the
table's worst case of an output covers white-box attacks on it and transfers from the others.
On the routed model a gradient attack runs once per `Switch` (switch.py), each iterate judged by
the hard routed output; the routed column of a family is the per-example worst case over them.

Whether an attack applies is the attack's own rule (`AttackSpec.unavailable`: norms, gradients,
routing switch, class count); the plan asks it and turns the answers into the report's notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nfi_tf.attacks.base import Target
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import suite, switch
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.subject import Subject
from nfi_tf.evaluation.suite.budgets import Budgets
from nfi_tf.evaluation.suite.registry import Unavailable
from nfi_tf.evaluation.vocab import Column
from nfi_tf.outputs import ROUTED, ROUTED_ONNX


@dataclasses.dataclass(frozen=True)
class PlannedAttack:
    key: AttackKey
    suite: bool = False  # part of the AutoAttack run: attack only the points still robust
    every_image: bool = False  # runs on every image whatever the mode (Square on the exported file)

    @property
    def family(self) -> str:
        return self.key.family

    @property
    def target(self) -> str:
        return self.key.target

    @property
    def spec(self) -> suite.AttackSpec:
        return suite.get(self.key.family)


@dataclasses.dataclass
class Plan:
    """Everything an evaluation runs: the subject, its images, the attacks and their targets."""

    cfg: object  # EvalConfig
    subject: Subject
    planned: list[PlannedAttack]
    attacks: dict[str, object]  # family -> its built attack (registry)
    targets: dict[AttackKey, object]  # planned key -> its Target
    budgets: Budgets
    threat: ThreatModel
    seed: int
    x: np.ndarray
    labels: np.ndarray
    notes: list[str]

    @property
    def exported_square(self) -> PlannedAttack | None:
        return next((p for p in self.planned if p.key.target == ROUTED_ONNX), None)


def _per_output(spec: suite.AttackSpec, rows, in_suite: bool) -> list[PlannedAttack]:
    out = []
    for row in rows:
        if row == ROUTED and spec.routed_variants:
            out.extend(PlannedAttack(AttackKey(spec.name, row, v), in_suite) for v in switch.SWITCHES)
        else:
            out.append(PlannedAttack(AttackKey(spec.name, row), in_suite))
    return out


def attacked_rows(subject: Subject, cfg) -> tuple[str, ...]:
    """The outputs the white-box attacks target (cfg.attack_outputs, or every row)."""
    rows = subject.rows
    if cfg.attack_outputs is None:
        return rows
    unknown = sorted(set(cfg.attack_outputs) - set(rows))
    if unknown:
        raise NfiError(f"attack_outputs must be among {','.join(rows)} for a {subject.method} model. "
                       f"Received: attack_outputs={','.join(cfg.attack_outputs)}")
    return tuple(r for r in rows if r in cfg.attack_outputs)


def asked_specs(cfg) -> list[suite.AttackSpec]:
    """The registered attacks cfg.attacks asks for, in registry order (AutoAttack's four when
    `autoattack` is asked)."""
    in_suite = set(suite.autoattack()) if Column.AUTOATTACK in cfg.attacks else set()
    return [s for s in suite.specs() if s.option_name in cfg.attacks or s.name in in_suite]


def applicable(subject: Subject, cfg) -> tuple[list[suite.AttackSpec], list[str]]:
    """The asked attacks that can run on the subject, and a note for each kind that cannot."""
    kept, notes, by_kind = [], [], {}
    for spec in asked_specs(cfg):
        why = spec.unavailable(cfg.norm, subject.num_classes, subject.routed, subject.gradients)
        if why is None:
            kept.append(spec)
        else:
            by_kind.setdefault(why, []).append(spec)
    for spec in by_kind.get(Unavailable.NO_SWITCH, []):
        notes.append(f"{spec.title} attacks skipped: a {subject.method.title} model has no routing switch")
    if by_kind.get(Unavailable.NORM):
        titles = ", ".join(s.title for s in by_kind[Unavailable.NORM]).replace("-{pgd_steps}", "")
        notes.append(f"{titles} skipped: no {cfg.norm.upper()} version in nfi-tf yet")
    # NO_GRADIENTS: the subject's own note says why (an ONNX file without a twin).
    notes += [why for why in by_kind if why not in tuple(Unavailable)]
    return kept, notes


def plan_attacks(subject: Subject, cfg, specs) -> list[PlannedAttack]:
    """Every attack to run, in a fixed order: registry order outside AutoAttack's suite, then the
    suite's attacks in its order, then the attacks of the routing switch."""
    rows = attacked_rows(subject, cfg)
    in_suite = set(suite.autoattack()) if Column.AUTOATTACK in cfg.attacks else set()
    out: list[PlannedAttack] = []
    for spec in specs:
        if spec.routed_only:
            out += [PlannedAttack(AttackKey(spec.name, ROUTED, v, aux)) for v, aux in spec.variants(cfg)]
        elif spec.name not in in_suite:
            out += _per_output(spec, rows, False)
    if in_suite:
        route_last = [p for p in out if p.spec.routed_only]
        out = [p for p in out if not p.spec.routed_only]
        for name in suite.autoattack():
            out += [p for spec in specs if spec.name == name for p in _per_output(spec, rows, True)]
        out += route_last
    if subject.exported is not None:  # the exported file, attacked through ONNX Runtime itself
        out.append(PlannedAttack(AttackKey(Column.SQUARE, ROUTED_ONNX), every_image=True))
    return out


def target_for(subject: Subject, planned: PlannedAttack):
    """The Target a planned attack runs against."""
    spec, key = planned.spec, planned.key
    if key.target == ROUTED_ONNX:
        return Target(subject.exported, name=str(key), query=subject.exported)
    target = spec.target(subject.classifier, key) if spec.target else \
        switch.output_target(subject.classifier, key)
    if not spec.gradient and subject.query is not None:
        target = dataclasses.replace(target, query=subject.query)  # queries the file itself
    return target


def make_plan(subject: Subject, cfg, x, labels, pgd, seed: int, notes=()) -> Plan:
    """The plan of an evaluation: `pgd` is PGD's AttackConfig (eps, step, steps), `notes` what
    the caller already knows (they come first in the report)."""
    specs, skipped = applicable(subject, cfg)
    planned = plan_attacks(subject, cfg, specs)
    budgets = Budgets.of(cfg, pgd, subject.num_classes)
    threat = ThreatModel(cfg.norm, pgd.epsilon)
    families = dict.fromkeys(p.family for p in planned)
    attacks = {f: suite.get(f).build(budgets, threat) for f in families}
    targets = {p.key: target_for(subject, p) for p in planned}
    return Plan(cfg, subject, planned, attacks, targets, budgets, threat, int(seed), x, labels,
                list(notes) + subject.notes + skipped)


def column_keys(planned: list[PlannedAttack], column: str, row: str) -> list[AttackKey]:
    """The keys an evaluation table's cell (row, column) is the worst case over.

    autoattack: the suite's attacks on `row` (the table adds the clean record, as AutoAttack
    counts a misclassified clean image as non-robust); route_aware: every route-aware key
    (routed row only); any other family: its own runs against `row` outside the suite.
    """
    if column == Column.AUTOATTACK:
        return [p.key for p in planned if p.suite and p.key.target == row]
    spec = suite.registry.by_option(column)
    if spec is None:
        return []
    if spec.routed_only:
        return [p.key for p in planned if p.family == spec.name] if row == ROUTED else []
    return [p.key for p in planned if p.family == spec.name and p.key.target == row and not p.suite]


def planned_from_keys(keys, suite_keys) -> list[PlannedAttack]:
    """The plan a stored record was made with (eval.npz keys and eval.json's suite_keys)."""
    suite_set = set(suite_keys)
    return [PlannedAttack(k, k in suite_set) for k in keys if not k.is_clean]
