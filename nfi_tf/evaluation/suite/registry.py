"""The attack registry: every evaluation attack declared once, in its own module.

An `AttackSpec` says everything the rest of the evaluation needs to know about one attack
family: its name (what `--attacks` accepts), its column title, its place in AutoAttack's
standard suite (or none), the budgets it reads with their standard and CPU values, how it is
built and bound to a target, what it reports about its settings (the eval.json entry and the
eval.md line), and when it applies (`unavailable`: the norms it has a version for, whether it
needs gradients or a routing switch, the fewest classes it works with).
Plans, suite lists, EvalConfig's defaults, the named budgets, the report's notes and its "below
AutoAttack's standard budget" line are all read from here, so adding an attack is one module
(`nfi_tf/evaluation/suite/<name>.py`, registered in the package `__init__`) and its test.

A built attack has one entry point: `run(x, y, seed, target) -> x_adv` (numpy in and out),
where `target` (`nfi_tf.attacks.base.Target`) is the output under attack as functions. The same built
attack runs against an nfi model's outputs and against any classifier's logits.

Plain Python: no TensorFlow at import (EvalConfig and the flags read budgets from here); each
spec imports its attack core inside `build`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from nfi_tf.vocab import Norm, StrEnum

BUDGET_NAMES = ("standard", "cpu")


class Unavailable(StrEnum):
    """Why an attack cannot run, the kinds the plan groups into one note each."""

    NORM = "norm"  # no version for the threat model's norm
    NO_SWITCH = "no_switch"  # needs a routing switch the model does not have
    NO_GRADIENTS = "no_gradients"  # needs gradients the model does not give


@dataclasses.dataclass(frozen=True)
class Budget:
    """One budget setting (an EvalConfig field) and its values under the named budgets."""

    field: str  # the EvalConfig field (and --flag) that sets it
    standard: Any  # AutoAttack's standard version (or the attack's usual setting)
    cpu: Any  # the CPU-scale budget the reproduction runs (reports state it)
    label: str = ""  # how the "below standard" line names it, e.g. "APGD" ... "iterations"
    unit: str = ""
    per_class: bool = False  # a number of target classes: capped at num_classes - 1
    help: str = ""  # the flag's help text


class RegisteredAttack(Protocol):
    def run(self, x: np.ndarray, y: np.ndarray, seed: int, target) -> np.ndarray:
        """Adversarial images for (x, y) against `target` (an AttackTarget)."""


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    name: str  # the family: what --attacks accepts and attack keys start with
    title: str  # the table's column title ({pgd_steps} is filled in)
    build: Callable[..., RegisteredAttack]  # (Budgets, ThreatModel) -> attack
    settings: Callable[..., dict]  # (Budgets, ThreatModel) -> its eval.json settings entry
    note: Callable[[Mapping], str]  # its eval.json settings entry -> its eval.md line
    settings_key: str = ""  # its entry in eval.json's settings (default: name)
    budgets: tuple[Budget, ...] = ()  # the budgets declared here
    reads: tuple[str, ...] = ()  # budgets declared by another spec that this one also reads
    suite_position: int | None = None  # place in AutoAttack's standard suite
    gradient: bool = True  # needs gradients (runs on a differentiable model)
    routed_variants: bool = True  # on the routed output: one run per switch relaxation
    routed_only: bool = False  # needs a routing switch (the route-aware attacks)
    option: str = ""  # the --attacks name when it differs from `name`
    norms: tuple[Norm, ...] = (Norm.LINF,)  # the threat models it has a version for
    min_classes: int = 2  # the fewest classes it works with
    min_classes_why: str = ""  # what needs them, for the note when a model has fewer
    variants: Callable[..., list[tuple[Any, int]]] | None = None  # (EvalConfig) -> [(variant, aux)]
    # (classifier, AttackKey) -> Target, for the attacks whose targets are their own (the
    # route-aware ones: each variant is an objective); None: the pipeline's output targets.
    target: Callable[..., Any] | None = None

    @property
    def entry(self) -> str:
        return self.settings_key or self.name

    @property
    def option_name(self) -> str:
        return self.option or self.name

    def fields(self) -> tuple[str, ...]:
        return tuple(b.field for b in self.budgets) + self.reads

    def unavailable(self, norm: str, num_classes: int, routed: bool, gradients: bool) -> str | None:
        """Why it cannot run on this model and threat model (None: it can): an `Unavailable`
        kind the plan groups into one note, or the note itself."""
        if norm not in self.norms:
            return Unavailable.NORM
        if self.routed_only and not routed:
            return Unavailable.NO_SWITCH
        if self.gradient and not gradients:
            return Unavailable.NO_GRADIENTS
        if num_classes < self.min_classes:
            return (f"{self.title} skipped: {self.min_classes_why or 'it'} needs >= {self.min_classes} "
                    f"classes. Received: {num_classes}")
        return None


_SPECS: dict[str, AttackSpec] = {}


def register(spec: AttackSpec) -> AttackSpec:
    if spec.name in _SPECS:
        raise ValueError(f"attack {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def specs() -> tuple[AttackSpec, ...]:
    """Every registered attack, in registration (= run) order."""
    return tuple(_SPECS.values())


def get(name: str) -> AttackSpec:
    if name not in _SPECS:
        raise KeyError(f"unknown attack family. Received: {name!r}; known: {', '.join(_SPECS)}")
    return _SPECS[name]


def unregister(name: str) -> None:
    """Remove a registered attack (a test's toy attack, once the test is done)."""
    _SPECS.pop(name, None)


@contextlib.contextmanager
def registered(spec: AttackSpec):
    """The attack registered for the duration of a `with` block (a toy attack in a test)."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)


def by_option(option: str) -> AttackSpec | None:
    """The attack `--attacks` names `option` (None for the names that are not one attack)."""
    return next((s for s in _SPECS.values() if s.option_name == option), None)


def autoattack() -> tuple[str, ...]:
    """AutoAttack's standard suite, in its order (cheap and strong first)."""
    return tuple(s.name for s in sorted((s for s in _SPECS.values() if s.suite_position is not None),
                                        key=lambda s: s.suite_position))


def budgets() -> tuple[Budget, ...]:
    return tuple(b for s in _SPECS.values() for b in s.budgets)


def budget_field(field: str) -> Budget:
    return next(b for b in budgets() if b.field == field)


def standard(field: str):
    """The standard value of a budget setting (EvalConfig's default)."""
    return budget_field(field).standard


def budget(name: str) -> dict[str, Any]:
    """A named budget as EvalConfig field values: "standard" or "cpu"."""
    if name not in BUDGET_NAMES:
        raise ValueError(f"budget must be one of {', '.join(BUDGET_NAMES)}. Received: budget={name!r}")
    return {b.field: getattr(b, name) for b in budgets()}


def deviations(families, values: Mapping[str, Any], num_classes: int) -> list[str]:
    """One line per budget setting below its standard value, for the families that ran, e.g.
    "APGD 50 iterations (standard: 100)"; a number of targets is compared with min(standard,
    num_classes - 1)."""
    out, seen = [], set()
    for spec in specs():
        if spec.name not in families:
            continue
        for field in spec.fields():
            b = budget_field(field)
            if field in seen or not b.label:
                continue
            seen.add(field)
            std = min(b.standard, num_classes - 1) if b.per_class else b.standard
            if values[field] < std:
                out.append(f"{b.label} {values[field]} {b.unit} (standard: {b.standard:,})")
    return out


class PerTarget:
    """Builds an attack's compiled pieces once per target: targets are built once per planned
    attack, so this is one trace per attack key."""

    def __init__(self, make: Callable[[Any], Callable]):
        self._make, self._built = make, {}

    def __call__(self, target) -> Callable:
        key = id(target)
        if key not in self._built:
            self._built[key] = (target, self._make(target))  # keep the target alive: ids stay unique
        return self._built[key][1]
