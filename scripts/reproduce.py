"""Reproduce the paper's claims at CPU scale on real data: train, evaluate, tabulate.

    bash scripts/reproduce.sh            # the full plan (hours on 2 CPU cores)
    bash scripts/reproduce.sh --quick    # the same pipeline on a tiny budget (minutes)
    python scripts/reproduce.py --plan=scale_trend --dry_run

The same command as `python -m nfi_tf.experiments reproduce`, with the same flags: the runner is
nfi_tf/experiments/reproduce.py (its plans are data: plans.py, reproduction.py, scale_trend.py).
"""

import sys

from nfi_tf.experiments import cli

if __name__ == "__main__":
    sys.exit(cli.main(["reproduce", *sys.argv[1:]]))
