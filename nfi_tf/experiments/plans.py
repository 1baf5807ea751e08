"""The plans the reproduction runner runs, by name: each is data, a list of `Run`s.

    reproduction  the paper's claims at CPU scale (reproduction.py): RESULTS.md's tables
    scale_trend   CIFAR-10 at 4x the epochs and 2x the width (scale_trend.py)

`python -m nfi_tf.experiments reproduce --plan=NAME` trains, evaluates, checks and tabulates a
plan's runs with the same code for every plan (reproduce.py, steps.py); a plan only says which
runs, whether it has a quick form, which run the synthesis starts from and whether its runs make
the reproduction's tables. Adding a plan is a module of runs and one `Plan` below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from nfi_tf.errors import NfiError
from nfi_tf.experiments import reproduction, scale_trend
from nfi_tf.experiments.runs import Run


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    help: str  # what `--plan`'s help says of it
    build: Callable[[bool], list[Run]]  # quick -> the runs, in the order they run
    has_quick: bool = False  # whether `--quick` (a budget of minutes) applies to it
    synthesis_run: str | None = None  # the run the two-stage synthesis (Figure 5) starts from
    tables: bool = False  # its runs make results_table.md, verdicts.json (and RESULTS.md)
    # Printed when a plan without tables is done; {results_dir} is filled in.
    done_note: str = ""

    def runs(self, quick: bool = False) -> list[Run]:
        if quick and not self.has_quick:
            quick_ones = " and ".join(p.name for p in PLANS.values() if p.has_quick)
            raise NfiError(f"--quick is the {quick_ones} plan's; the {self.name} plan has no quick form")
        return self.build(quick)


REPRODUCTION = Plan(
    name="reproduction",
    help="the paper's claims (RESULTS.md's tables)",
    build=reproduction.plan,
    has_quick=True,
    synthesis_run=reproduction.SYNTHESIS_RUN,
    tables=True,
)
SCALE_TREND = Plan(
    name="scale_trend",
    help="CIFAR-10 at 4x the epochs and 2x the width (nfi_tf/experiments/scale_trend.py)",
    build=lambda quick: scale_trend.plan(),
    done_note="[reproduce] scale_trend: runs in {results_dir}; its tables: "
              "python -m nfi_tf.experiments.scale_report",
)
PLANS = {p.name: p for p in (REPRODUCTION, SCALE_TREND)}


def get(name: str) -> Plan:
    if name not in PLANS:
        raise NfiError(f"plan must be one of {', '.join(PLANS)}. Received: plan={name}")
    return PLANS[name]
