"""Experiments as data: the runs this project trains and evaluates, their budgets, the claims.

    budgets.py       named evaluation budgets: standard, cpu (the attack registry's), quickstart,
                     quick
    runs.py          `Run` (dataset, training config overrides, `EvalSpec`) and the quickstart
    reproduction.py  the reproduction's runs over datasets and seeds (scripts/reproduce.py)
    claims.py        the paper's claims (and the mechanism, route-guard and ablation ones) with
                     their verdict rule, judged on paired per-example records
    tables.py        RESULTS.md's tables and verdicts.json from the finished runs

`python -m nfi_tf.experiments run quickstart [train flags]` trains and evaluates a named run with
the same commands a user types (scripts/quickstart.sh); scripts/reproduce.py runs the plan.
"""

from nfi_tf.experiments.budgets import NAMES as BUDGETS
from nfi_tf.experiments.budgets import budget
from nfi_tf.experiments.runs import QUICKSTART, RUNS, EvalSpec, Run

__all__ = ["BUDGETS", "QUICKSTART", "RUNS", "EvalSpec", "Run", "budget"]
