"""The benchmarks' one command: `python -m bench --suite=NAME [flags]`.

Flags -> the suite's config (flags/bench.py, from bench/config.py) -> the suite's run
(bench/registry.py). The measuring suites run together through bench.suites.run_suites; a tool
runs alone. `--help` lists every suite, `--suite=NAME --help` that suite's flags. This is the
only bench module that imports absl or `flags/`.

The old commands stay: `python -m bench.attack_bench ...` (and serve_bench, multi_worker,
time_to_robustness, train_bench '<json>', bf16 '<json>') call `alias`, which hands their command
line over to this one.
"""

from __future__ import annotations

import sys

from absl import flags

from bench import registry
from flags import bench as bench_flags
from nfi_tf.commands.entry import run_command


def _log(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str]) -> None:
    suite, config = bench_flags.config_from_flags(flags.FLAGS)
    if suite.measuring:
        from bench.suites import run_suites

        run_suites(config, log=_log)
    else:
        suite.run(config, _log)


def run(prog: str = "bench") -> None:
    """`python -m bench`: --suite read first, then its flags defined, then the run."""
    main_module = sys.modules["__main__"]
    if prog == "bench":  # --help: every suite, from the registry
        main_module.__doc__ = registry.usage()
    bench_flags.define_flags(suite=bench_flags.peek_suite(sys.argv))
    run_command(prog, main)


def alias(suite: str, spec_argument: bool = False) -> None:
    """An old command (`python -m bench.attack_bench ...`) as `python -m bench --suite=<suite>
    ...`; `spec_argument`: its one positional argument is the JSON spec (`--spec`)."""
    args = sys.argv[1:]
    if spec_argument and args and not args[0].startswith("-"):
        args = [f"--spec={args[0]}", *args[1:]]
    sys.argv[1:] = [f"--suite={suite}", *args]
    run(prog=sys.modules["__main__"].__spec__.name if sys.modules["__main__"].__spec__ else "bench")
