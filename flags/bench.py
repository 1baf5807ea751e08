"""Flags of `python -m bench --suite=NAME` (see BENCHMARKS.md), made from the suites' config
dataclasses (bench/config.py, flags/dataclass_flags.py), and the configs they build.

Which flags exist depends on the suite: the measuring suites share BenchConfig's, a tool has its
own config's. So the command reads `--suite` first (`peek_suite`), then defines `--suite` and
that config's flags. The suites and their summaries come from bench/registry.py.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from bench import registry
from bench.config import BenchConfig, validate
from flags import dataclass_flags as dcf

SUITE_FIELD = "suites"  # BenchConfig's field behind --suite


def _with_names(spec: dcf.FlagSpec) -> dcf.FlagSpec:
    """--suite's help, with the suites' names from the registry."""
    return dataclasses.replace(spec, help=f"{spec.help} Measuring: {', '.join(registry.measuring())}; "
                                          f"tools: {', '.join(registry.tools())}.")


def specs(config: type = BenchConfig) -> list[dcf.FlagSpec]:
    """The flags of a suite's config; BenchConfig's include --suite, its help from the registry."""
    out = dcf.flag_specs(config)
    return [_with_names(s) if config is BenchConfig and s.field == SUITE_FIELD else s for s in out]


def suite_spec() -> dcf.FlagSpec:
    return next(s for s in specs() if s.field == SUITE_FIELD)


def peek_suite(argv: list[str]) -> str:
    """The text of --suite on the command line, read before any flag is defined (which flags
    exist depends on it); `all` when it is not given."""
    peek = flags.FlagValues()
    flags.DEFINE_string(suite_spec().flag, registry.ALL, "", flag_values=peek)
    try:
        peek(list(argv), known_only=True)
    except flags.Error:  # malformed: the real parse reports it
        return registry.ALL
    return peek[suite_spec().flag].value


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, suite: str = registry.ALL) -> None:
    """--suite and the flags of the config `suite` takes (BenchConfig's unless it names a tool)."""
    config = registry.config_of(suite)
    chosen = specs(config) if config is BenchConfig else [suite_spec(), *specs(config)]
    dcf.define(chosen, flag_values=flag_values)


def bench_config_from_flags(values: flags.FlagValues) -> BenchConfig:
    """The one place where the measuring suites' flags become a BenchConfig."""
    from bench.suites import suites_of

    def suites(text: str) -> tuple[str, ...] | None:
        names = tuple(suites_of(text))
        return None if names == registry.measuring() else names  # None: every one

    fields = dcf.values_from_flags(values, specs(), converters={SUITE_FIELD: suites})
    return validate(BenchConfig(**fields))


def config_from_flags(values: flags.FlagValues) -> tuple[registry.Suite, object]:
    """(the first suite chosen, its validated config): BenchConfig for the measuring suites, a
    tool's own config otherwise."""
    chosen = registry.select(values[suite_spec().flag].value)
    if chosen[0].measuring:
        return chosen[0], bench_config_from_flags(values)
    config = chosen[0].config
    return chosen[0], validate(config(**dcf.values_from_flags(values, specs(config))))
