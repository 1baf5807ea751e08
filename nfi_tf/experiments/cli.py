"""`python -m nfi_tf.experiments`: the experiments' one command line.

    python -m nfi_tf.experiments run quickstart --model_dir=runs/mnist_quickstart [train flags]
    python -m nfi_tf.experiments run quickstart --dry_run    # print the two commands
    python -m nfi_tf.experiments reproduce [--quick] [--plan=reproduction|scale_trend] [--dry_run]
        [--stage=all|train|tables] [--runs=a,b] [--datasets=mnist] [--work_dir=D] [--results_dir=D]

`run` trains and evaluates a named run (runs.RUNS) with the same two commands a user would type,
`python -m nfi_tf.train` then `python -m nfi_tf.evaluate`; flags after the run's name that are
not this command's go to the training command, after the run's own (so they win: `--seed=1`,
`--epochs=1`). `reproduce` runs a plan (plans.py) through reproduce.py; `bash
scripts/reproduce.sh` and `python scripts/reproduce.py` are this subcommand. Errors are one line
and exit 2.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess

from nfi_tf.errors import NfiError
from nfi_tf.experiments import plans, reproduce
from nfi_tf.experiments.reproduce import Options, Stage
from nfi_tf.experiments.runs import RUNS

PROG = "python -m nfi_tf.experiments"


def add_reproduce_flags(parser: argparse.ArgumentParser) -> None:
    """The reproduce subcommand's flags (scripts/reproduce.py's, which hands over to it)."""
    defaults = Options()
    parser.add_argument("--quick", action="store_true", help="tiny budget (minutes)")
    parser.add_argument("--plan", choices=tuple(plans.PLANS), default=defaults.plan,
                        help="; ".join(f"{p.name}: {p.help}" for p in plans.PLANS.values()))
    parser.add_argument("--dry_run", action="store_true",
                        help="list the plan's runs and their commands, run nothing")
    parser.add_argument("--work_dir", default=defaults.work_dir,
                        help="checkpoints and full model dirs (not for git)")
    parser.add_argument("--results_dir", default=None,
                        help="small outputs (default: results/, or results_quick/ with --quick)")
    parser.add_argument("--datasets", default=None,
                        help="run only these datasets' runs, e.g. mnist (default: the plan's; the tables "
                             "still cover every finished run)")
    parser.add_argument("--runs", default="", help="comma list of run names to run, e.g. "
                        "nfi_route_guard_seed0 (default: all; the tables still cover every finished run)")
    parser.add_argument("--stage", choices=[s.value for s in Stage], default=defaults.stage.value,
                        help="train: only train the runs (evaluate and tabulate later); tables: "
                             "only rebuild the tables from the runs already finished")


def reproduce_options(args: argparse.Namespace) -> Options:
    return Options(plan=args.plan, quick=args.quick, dry_run=args.dry_run, stage=Stage(args.stage),
                   runs=tuple(filter(None, args.runs.split(","))),
                   datasets=tuple(args.datasets.split(",")) if args.datasets else None,
                   work_dir=args.work_dir, results_dir=args.results_dir)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train, then evaluate a named run", allow_abbrev=False)
    run.add_argument("name", choices=sorted(RUNS))
    run.add_argument("--model_dir", default=None, help="default: runs/<dataset>_<name>")
    run.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    repro = commands.add_parser(
        "reproduce", help="train, evaluate, check and tabulate a plan's runs (resumable)",
        description="Reproduce the paper's claims at CPU scale on real data: train, evaluate, "
                    "tabulate.")
    add_reproduce_flags(repro)
    return parser, {"run": run, "reproduce": repro}


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    spec = RUNS[args.name]
    model_dir = args.model_dir or f"runs/{spec.dataset}_{spec.name}"
    for cmd in spec.commands(model_dir, extra):
        if args.dry_run:
            print(shlex.join(["python"] + cmd[1:]))
            continue
        code = subprocess.run(cmd).returncode
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        unknown = [a for a in extra if not a.startswith("--")]
        if unknown:
            parser.error(f"training flags are --name=value. Received: {' '.join(unknown)}")
        return _run(args, extra)
    if extra:
        commands["reproduce"].error(f"unrecognized arguments: {' '.join(extra)}")
    options = reproduce_options(args)
    try:
        selection = reproduce.prepare(options)
    except NfiError as e:  # a plan, run or dataset it does not have: one line, exit 2
        commands["reproduce"].error(str(e))
    return reproduce.run(selection, options)
