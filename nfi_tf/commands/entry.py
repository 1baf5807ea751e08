"""The one entry of every command: its own flags in --help, one-line errors, exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable

import nfi_tf  # noqa: F401  (quiets TensorFlow's C++ start-up logs before TensorFlow loads)

EXIT_BAD_INPUT = 2


def guarded(prog: str, main: Callable[[list[str]], None],
            takes_arguments: bool = False) -> Callable[[list[str]], None]:
    """Wrap an absl `main` so an NfiError prints `prog: error: ...` and exits 2; positional
    arguments are a usage error unless the command `takes_arguments` (predict's image files)."""

    def wrapped(argv: list[str]) -> None:
        from absl import app, logging

        from nfi_tf.errors import NfiError

        logging.set_verbosity(logging.WARNING)  # tfds/checkpoint INFO lines are noise here
        if not takes_arguments and len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        try:
            main(argv)
        except NfiError as e:
            print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; the last checkpoint is kept", file=sys.stderr)
            sys.exit(130)

    return wrapped


def _adopt_command_flags() -> None:
    """Make the flags defined in `flags/` key flags of the running command, so `--help` lists
    exactly them (with defaults and help text); absl's and TensorFlow's own flags stay in
    `--helpfull`. absl shows the key flags of the module named by sys.argv[0]."""
    from absl import flags

    values = flags.FLAGS
    for module, defined in values.flags_by_module_dict().items():
        if module == "flags" or module.startswith("flags."):
            for flag in defined:
                values.register_key_flag_for_module(sys.argv[0], flag)


def run_command(prog: str, main: Callable[[list[str]], None], *,
                define_flags: Callable[[], None] | None = None, takes_arguments: bool = False) -> None:
    """Define the command's flags (`define_flags`, from `flags/`), list them in --help, then
    run `main(argv)` behind `guarded`."""
    from absl import app

    if define_flags is not None:
        define_flags()
    _adopt_command_flags()
    app.run(guarded(prog, main, takes_arguments))
