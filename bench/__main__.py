"""The benchmarks: `python -m bench --suite=NAME [flags]` (bench/cli.py).

Every suite is registered in bench/registry.py; `--help` lists them all, `--suite=NAME --help`
one suite's flags (made from its config dataclass, bench/config.py). BENCHMARKS.md has the
commands and the figures.
"""

from bench.cli import run

if __name__ == "__main__":
    run()
