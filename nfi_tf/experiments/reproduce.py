"""The reproduction runner: train, evaluate, check and tabulate the runs of a plan (plans.py).

    python -m nfi_tf.experiments reproduce                      # the full reproduction (hours)
    python -m nfi_tf.experiments reproduce --quick              # the same pipeline in minutes
    python -m nfi_tf.experiments reproduce --plan=scale_trend   # another plan, the same code

(`bash scripts/reproduce.sh` and `python scripts/reproduce.py` take the same flags.) For each
selected run, in the plan's order: train (steps.train_one), evaluate with `python -m
nfi_tf.evaluate` and keep the small outputs under <results_dir>/<dataset>/<run> (run_one), run
the independent attack (independent_check), and the synthesis from the plan's synthesis run.
Finished runs are reused. Then a plan with tables writes `results_table.md` and `verdicts.json`
from every finished run of the plan (whichever runs this call made), with the claims' verdicts
(claims.py, tables.py), and RESULTS.md's tables when the results dir is the committed one.
"""

from __future__ import annotations

import dataclasses
import os
import shlex

from nfi_tf.errors import NfiError
from nfi_tf.experiments import claims, plans, steps, tables
from nfi_tf.experiments.runs import Run
from nfi_tf.vocab import StrEnum

DEFAULT_WORK_DIR = os.path.join(steps.REPO, "runs", "reproduce")
COMMITTED_RESULTS = os.path.join(steps.REPO, "results")


class Stage(StrEnum):
    ALL = "all"  # train, evaluate, check, tabulate
    TRAIN = "train"  # only train the runs (evaluate and tabulate later)
    TABLES = "tables"  # only rebuild the tables from the runs already finished


@dataclasses.dataclass(frozen=True)
class Options:
    plan: str = plans.REPRODUCTION.name
    quick: bool = False  # the plan's budget of minutes
    dry_run: bool = False  # list the selected runs and their commands, run nothing
    stage: Stage = Stage.ALL
    runs: tuple[str, ...] = ()  # run only these runs (empty: all)
    datasets: tuple[str, ...] | None = None  # run only these datasets' runs (None: all)
    work_dir: str = DEFAULT_WORK_DIR  # checkpoints and model dirs (not for git); "_quick" added
    results_dir: str | None = None  # small outputs; None: results/ (results_quick/ with quick)

    def resolved_work_dir(self) -> str:
        return self.work_dir + ("_quick" if self.quick else "")

    def resolved_results_dir(self) -> str:
        return self.results_dir or os.path.join(steps.REPO, "results_quick" if self.quick
                                                else "results")


def select(known: list[Run], options: Options) -> list[Run]:
    """The runs of `known` this call runs; an unknown run or dataset name is an NfiError."""
    wanted = set(options.runs)
    datasets = set(options.datasets) if options.datasets else {r.dataset for r in known}
    for asked, valid, flag in ((wanted, {r.name for r in known}, "runs"),
                               (datasets, {r.dataset for r in known}, "datasets")):
        if asked - valid:
            raise NfiError(f"unknown {flag}: {','.join(sorted(asked - valid))}; "
                           f"the plan has: {','.join(sorted(valid))}")
    return [r for r in known if r.dataset in datasets and (not wanted or r.name in wanted)]


def dry_run(selected: list[Run], work_dir: str) -> None:
    """Print each run and the two commands a user would type for it."""
    for run in selected:
        print(f"{run.dataset}/{run.name} ({run.kind})")
        for cmd in run.commands(steps.model_dir(work_dir, run), python="python"):
            print("    " + shlex.join(cmd))


def execute(plan: plans.Plan, selected: list[Run], options: Options) -> None:
    """Train (Stage.TRAIN), or train, evaluate, check and synthesize, each selected run."""
    work_dir, results_dir = options.resolved_work_dir(), options.resolved_results_dir()
    for run in selected:
        if options.stage == Stage.TRAIN:
            steps.train_one(run, work_dir)
            continue
        steps.run_one(run, work_dir, results_dir)
        steps.independent_check(run, work_dir, results_dir, options.quick)
        if run.name == plan.synthesis_run:
            steps.synthesize(run, work_dir, results_dir, options.quick)


def tabulate(known: list[Run], results_dir: str) -> None:
    """The tables of every finished run of the plan (a call limited by --runs or --datasets must
    not leave tables of just those runs); RESULTS.md too for the committed results."""
    records = [{"dataset": run.dataset, "run": run.name} for run in known
               if steps.finished(steps.kept_dir(results_dir, run), run)]
    text = tables.write_tables(results_dir, records, claims.PAPER_TABLE1, claims.PAPER_TABLE2)
    if os.path.abspath(results_dir) == COMMITTED_RESULTS:
        tables.update_doc(os.path.join(steps.REPO, "RESULTS.md"), text)
    print(f"[reproduce] done: {len(records)} runs; tables in "
          f"{os.path.join(results_dir, tables.TABLE_FILE)}")


@dataclasses.dataclass(frozen=True)
class Selection:
    plan: plans.Plan
    known: list[Run]  # every run of the plan (the tables cover every finished one)
    selected: list[Run]  # the runs this call runs


def prepare(options: Options) -> Selection:
    """The plan and the runs `options` name; NfiError for a plan, run or dataset it does not
    have (checked before anything runs)."""
    plan = plans.get(options.plan)
    known = plan.runs(options.quick)
    return Selection(plan, known, select(known, options))


def run(selection: Selection, options: Options) -> int:
    """Run the selection as `options` ask (the steps' own errors propagate)."""
    if options.dry_run:
        dry_run(selection.selected, options.resolved_work_dir())
        return 0
    if options.stage != Stage.TABLES:
        execute(selection.plan, selection.selected, options)
    if options.stage == Stage.TRAIN:
        return 0
    results_dir = options.resolved_results_dir()
    if not selection.plan.tables:
        print(selection.plan.done_note.format(results_dir=results_dir))
        return 0
    tabulate(selection.known, results_dir)
    return 0


def reproduce(options: Options) -> int:
    """`python -m nfi_tf.experiments reproduce` as a function: prepare, then run."""
    return run(prepare(options), options)
