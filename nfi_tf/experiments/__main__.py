"""`python -m nfi_tf.experiments`: run a named run, or reproduce a plan (cli.py says how).

    python -m nfi_tf.experiments run quickstart --model_dir=runs/mnist_quickstart [train flags]
    python -m nfi_tf.experiments run quickstart --dry_run    # print the two commands
    python -m nfi_tf.experiments reproduce [--quick] [--plan=scale_trend] [--dry_run] ...
"""

from __future__ import annotations

import sys

from nfi_tf.experiments.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
