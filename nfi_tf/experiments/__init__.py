"""Experiments as data: the runs this project trains and evaluates, their budgets, the claims,
and the one runner that trains, evaluates, checks and tabulates them.

    budgets.py       named evaluation budgets: standard, cpu (the attack registry's), quickstart,
                     quick
    runs.py          `Run` (dataset, training config overrides, `EvalSpec`, `Kind`) and the
                     quickstart runs
    reproduction.py  the reproduction's runs over datasets and seeds
    scale_trend.py   the scale-trend plan's runs (CIFAR-10, more epochs or a wider network)
    plans.py         the plans by name (`Plan`: which runs, quick form, synthesis, tables)
    reproduce.py     the runner: select a plan's runs, run them, tabulate (`reproduce(Options)`)
    steps.py         one run's steps: train, evaluate and keep, independent check, synthesis
    claims.py        the paper's claims (and the mechanism, route-guard and ablation ones) with
                     their verdict rule, judged on paired per-example records
    tables.py        RESULTS.md's tables and verdicts.json from the finished runs
    cli.py           the command line (`python -m nfi_tf.experiments`)

`python -m nfi_tf.experiments run quickstart [train flags]` trains and evaluates a named run with
the same commands a user types (scripts/quickstart.sh); `python -m nfi_tf.experiments reproduce
[--quick] [--plan=NAME] ...` runs a plan (scripts/reproduce.sh and scripts/reproduce.py run it).
"""

from nfi_tf.experiments.budgets import NAMES as BUDGETS
from nfi_tf.experiments.budgets import budget
from nfi_tf.experiments.runs import QUICKSTART, RUNS, EvalSpec, Kind, Run

__all__ = ["BUDGETS", "QUICKSTART", "RUNS", "EvalSpec", "Kind", "Run", "budget"]
