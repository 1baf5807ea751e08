"""What every command line shares: one-line errors and a non-zero exit for bad input."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

# TensorFlow's C++ start-up chatter buries the one line a user needs; keep warnings and up.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_BAD_INPUT = 2


def guarded(prog: str, main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """Wrap an absl `main` so an NfiError prints `prog: error: ...` and exits 2."""

    def wrapped(argv: list[str]) -> None:
        from absl import logging

        from nfi_tf.errors import NfiError

        logging.set_verbosity(logging.WARNING)  # tfds/checkpoint INFO lines are noise here

        try:
            main(argv)
        except NfiError as e:
            print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; the last checkpoint is kept", file=sys.stderr)
            sys.exit(130)

    return wrapped


def split_cpu_if_asked(n: int) -> None:
    if n and n > 1:
        from nfi_tf.distribute import split_cpu

        split_cpu(n)
