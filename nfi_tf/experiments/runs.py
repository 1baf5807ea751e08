"""A run as data: what is trained (config overrides on a dataset preset) and how it is evaluated.

A `Run` is a dataset, a name, the training config's overrides ({group: {field: value}}, as
`nfi_tf.config.make_config` takes them) and an `EvalSpec`: a named budget (budgets.py) plus the
run's own evaluation settings (test images, attacks, attacked outputs). The same run can be
trained in process (`run.config`) or through the command line (`train_flags`/`commands`: the
flags `python -m nfi_tf.train` and `python -m nfi_tf.evaluate` accept), and gives the same
config either way (tests/test_experiments.py parses the flags back).

`QUICKSTART` is the main job of the README (scripts/quickstart.sh); the reproduction's runs are
in reproduction.py.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from nfi_tf import outputs
from nfi_tf.config import Config, make_config
from nfi_tf.evaluation import suite
from nfi_tf.evaluation.config import EvalConfig, validate
from nfi_tf.evaluation.vocab import Column
from nfi_tf.experiments import budgets
from nfi_tf.vocab import StrEnum

# The training flags are made from Config's fields (flags/train.py): a field's flag is its
# metadata's "flag" or its name, with "eval_" before the per-epoch check's PGD settings.
_FLAG_PREFIX = {"eval_attack": "eval_"}


def format_flag_value(value: Any) -> str:
    """A value as a flag spells it: tuples comma-separated, whole floats without ".0"."""
    if isinstance(value, (tuple, list)):
        return ",".join(format_flag_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def train_flag_name(group: str, field: str) -> str:
    """The `python -m nfi_tf.train` flag that sets config field `group.field`."""
    groups = {f.name: f.default_factory for f in dataclasses.fields(Config)}
    if group not in groups:
        raise ValueError(f"unknown config group. Received: group={group!r}")
    fields = {f.name: f for f in dataclasses.fields(groups[group])}
    if field not in fields:
        raise ValueError(f"{group} has no field {field!r}")
    return _FLAG_PREFIX.get(group, "") + fields[field].metadata.get("flag", field)


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """How a run is evaluated: EvalConfig's values, from a named budget plus the run's own."""

    budget: str  # a name of budgets.NAMES
    examples: int | None  # the first N test images (None: the whole test split)
    attacks: tuple[str, ...] | None = None  # None: EvalConfig's default
    attack_outputs: tuple[str, ...] | None = None  # None: every output
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # other EvalConfig fields

    def values(self) -> dict[str, Any]:
        """EvalConfig field values (all but model_dir)."""
        out = {**budgets.budget(self.budget), **self.settings, "eval_examples": self.examples}
        if self.attacks is not None:
            out["attacks"] = self.attacks
        if self.attack_outputs is not None:
            out["attack_outputs"] = self.attack_outputs
        return out

    def config(self, model_dir: str) -> EvalConfig:
        return validate(EvalConfig(model_dir=model_dir, **self.values()))

    def flags(self) -> list[str]:
        """`python -m nfi_tf.evaluate` flags but --model_dir and --eval_examples: --attacks, the
        run's settings, the budget where it differs from the standard one, --attack_outputs."""
        values = {}
        if self.attacks is not None:
            values["attacks"] = self.attacks
        values.update(self.settings)
        values.update(budgets.from_standard(self.budget))
        if self.attack_outputs is not None:
            values["attack_outputs"] = self.attack_outputs
        return [f"--{k}={format_flag_value(v)}" for k, v in values.items()]


class Kind(StrEnum):
    """What a run is to its plan (the dry run prints it; the reproduction orders its runs by it)."""

    MAIN = "main"  # the paper's comparison: TRADES and nfi, every seed
    CONTROL = "control"  # TRADES with nfi's total loss weight, at the main budget
    ABLATION = "ablation"  # a shorter run compared within its ablation set
    GUARD = "guard"  # the route guard, an option beside the paper's method
    SCALE = "scale"  # the scale-trend plan's: a main run moved along one axis


@dataclasses.dataclass(frozen=True)
class Run:
    dataset: str
    name: str  # the run's directory name (results/<dataset>/<name>)
    overrides: Mapping[str, Mapping[str, Any]]  # training config: {group: {field: value}}
    eval: EvalSpec
    kind: Kind = Kind.MAIN

    @functools.cached_property
    def config(self) -> Config:
        return make_config(self.dataset, {g: dict(v) for g, v in self.overrides.items()})

    def train_flags(self) -> list[str]:
        """`python -m nfi_tf.train` flags but --model_dir: the dataset and every override."""
        return [f"--dataset={self.dataset}"] + [
            f"--{train_flag_name(group, field)}={format_flag_value(value)}"
            for group, values in self.overrides.items() for field, value in values.items()]

    def commands(self, model_dir: str, extra_train_flags: Sequence[str] = (),
                 python: str = sys.executable) -> list[list[str]]:
        """The two commands that train and evaluate this run into `model_dir` (extra train flags
        are appended, so they win over the run's own)."""
        train = [python, "-m", "nfi_tf.train", f"--model_dir={model_dir}", *self.train_flags(),
                 *extra_train_flags]
        evaluate = [python, "-m", "nfi_tf.evaluate", f"--model_dir={model_dir}"]
        if self.eval.examples is not None:
            evaluate.append(f"--eval_examples={self.eval.examples}")
        return [train, evaluate + self.eval.flags()]


# The README's main job: the method on real MNIST at CPU size, in under 10 minutes on 2 cores.
# 3 epochs on the first 17,435 training images with a 5-step PGD (step 0.08; the paper trains
# 100 epochs with PGD-40); the per-epoch check and the evaluation on the first 500 test images.
# The evaluation attacks the routed model with PGD-40, CW-Linf, APGD-CE and APGD-T (AutoAttack's
# gradient attacks) through the hard, straight-through and soft switches, and the route-aware
# attacks; the worst case in cascade.
#
# Chosen on held-out training images, never on the test images (docs/reproduction.md, "How the
# quickstart's budget was chosen"): on 500 validation images this evaluation lost as many images
# as the full one (AutoAttack's four attacks, FAB-T and Square included, against the routed model
# and the trade-off head): the same 405 on a PGD-10 model, 403 on the PGD-5 one (2 different
# images each way). PGD-5 training cost 0.65x PGD-10's step time for a validation worst case
# within one standard error of it (80.6 vs 81.0%, McNemar p = 0.82). Attacking the trade-off head
# too (its attacks transferred to the routed model) took the quickstart to 10 min 11 s.
# `QUICKSTART_FULL` is the full evaluation of the same model.
# AutoAttack's gradient attacks, APGD-CE and APGD-T: the first two of its suite (the registry
# names AutoAttack's attacks, nowhere else).
_AUTOATTACK_GRADIENT = suite.autoattack()[:2]
_QUICKSTART_OVERRIDES = {
    "train": {"epochs": 3, "learning_rate": 0.05, "lr_decay_epochs": (2,)},
    "attack": {"num_steps": 5, "step_size": 0.08},
    # A fixed, stated subset: the first 17,435 MNIST training images (all the offline copy
    # holds, in the original order), so a machine that downloads the full 60,000 trains on the
    # same images for the same time.
    "data": {"eval_examples": 500, "train_examples": 17435}}
QUICKSTART = Run(
    dataset="mnist",
    name="quickstart",
    overrides=_QUICKSTART_OVERRIDES,
    # The worst case in cascade (each attack only on the points every earlier one left robust:
    # the same attacks and worst case, at the cost of the points still standing); the
    # reproduction keeps per-attack columns on every image. (Settings are EvalConfig's fields,
    # here its `cascade` flag, not the WorstCaseMode member of the same text.)
    eval=EvalSpec(budget="quickstart", examples=500,
                  attacks=(Column.CLEAN, Column.PGD, Column.CW, *_AUTOATTACK_GRADIENT,
                           Column.ROUTE_AWARE),
                  attack_outputs=(outputs.ROUTED,), settings=dict(cascade=True)),
)
# The same model under the whole evaluation the quickstart ran until 2026-12-04: AutoAttack's
# suite as AutoAttack runs it (FAB-T and Square too) against the routed model and the trade-off
# head (`python -m nfi_tf.experiments run quickstart_full`: about 11 min more on 2 cores).
QUICKSTART_FULL = Run(
    dataset="mnist",
    name="quickstart_full",
    overrides=_QUICKSTART_OVERRIDES,
    eval=EvalSpec(budget="quickstart", examples=500,
                  attacks=(Column.CLEAN, Column.PGD, Column.CW, Column.AUTOATTACK, Column.ROUTE_AWARE),
                  attack_outputs=(outputs.ROUTED, outputs.TRADEOFF), settings=dict(cascade=True)),
)

# The time-to-robustness recipe (bench/time_to_robustness.py; BENCHMARKS.md "Time to
# robustness"): the quickstart trained 5 epochs under one cycle of the learning rate (peak 0.1 at
# 40% of the steps) instead of 3 with a constant rate decayed once. Chosen on validation images as
# the shortest run on the plateau: 86.4% routed worst case against the quickstart's 80.6% (6.0
# against 4.0 min of training; 7 cyclic epochs reached 87.4%, not distinguishable, for 9.1 min).
# The same evaluation as the quickstart's: `python -m nfi_tf.experiments run quickstart_robust`.
QUICKSTART_ROBUST = Run(
    dataset="mnist",
    name="quickstart_robust",
    overrides={**_QUICKSTART_OVERRIDES,
               # lr_decay_epochs stays the quickstart's, unused by the cycle: the config is the
               # one the benchmark's variant trained with.
               "train": {**_QUICKSTART_OVERRIDES["train"], "epochs": 5, "learning_rate": 0.1,
                         "lr_schedule": "cyclic"}},
    eval=QUICKSTART.eval,
)

RUNS = {r.name: r for r in (QUICKSTART, QUICKSTART_FULL, QUICKSTART_ROBUST)}
