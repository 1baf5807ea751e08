"""Flags of `python -m bench` (the benchmark suite; see BENCHMARKS.md), made from BenchConfig's
fields (flags/dataclass_flags.py), and the BenchConfig they build."""

from absl import flags

from bench.config import BenchConfig, validate
from flags import dataclass_flags as dcf


def specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(BenchConfig)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    dcf.define(specs(), flag_values=flag_values)


def bench_config_from_flags(values: flags.FlagValues) -> BenchConfig:
    """The one place where bench flags become a BenchConfig."""
    from bench.suites import suites_of

    fields = dcf.values_from_flags(values, specs(),
                                   converters={"suites": lambda text: tuple(suites_of(text))})
    return validate(BenchConfig(**fields))
