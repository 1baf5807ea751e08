"""`python -m nfi_tf.experiments`: train and evaluate a named run (runs.RUNS) with the same two
commands a user would type, `python -m nfi_tf.train` then `python -m nfi_tf.evaluate`.

    python -m nfi_tf.experiments run quickstart --model_dir=runs/mnist_quickstart [train flags]
    python -m nfi_tf.experiments run quickstart --dry_run    # print the two commands

Flags after the run's name that are not this command's go to the training command, after the
run's own (so they win: `--seed=1`, `--epochs=1`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from nfi_tf.experiments.runs import RUNS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nfi_tf.experiments",
                                     description=__doc__.splitlines()[0], allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train, then evaluate a named run", allow_abbrev=False)
    run.add_argument("name", choices=sorted(RUNS))
    run.add_argument("--model_dir", default=None, help="default: runs/<dataset>_<name>")
    run.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if not a.startswith("--")]
    if unknown:
        parser.error(f"training flags are --name=value. Received: {' '.join(unknown)}")
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


if __name__ == "__main__":
    sys.exit(main())
