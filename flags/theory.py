"""Flags of `python -m nfi_tf.theory`, and the TheoryConfig they build.

The flags are made from TheoryConfig's fields (flags/dataclass_flags.py): their defaults are the
fields', their help the fields' metadata.
"""

from absl import flags

from flags import dataclass_flags as dcf
from nfi_tf.errors import NfiError
from nfi_tf.theory import TheoryConfig


def specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(TheoryConfig)


def define_theory_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    dcf.define(specs(), flag_values=flag_values)


def _sizes(raw: list[str]) -> tuple[int, ...]:
    """Test-set sizes; written as numbers they may carry an exponent or a fraction (1e4, 1000.0)."""
    try:
        return tuple(int(float(v)) for v in raw)
    except ValueError as e:
        raise NfiError(f"--table_sizes takes comma-separated numbers. "
                       f"Received: table_sizes={','.join(raw)!r}") from e


def theory_config_from_flags(values: flags.FlagValues) -> TheoryConfig:
    return TheoryConfig(**dcf.values_from_flags(values, specs(), converters={"table_sizes": _sizes}))
