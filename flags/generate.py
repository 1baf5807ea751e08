"""Flags of `python -m nfi_tf.generate`, and the SynthesisConfig they build.

The synthesis flags are made from SynthesisConfig's fields (flags/dataclass_flags.py): their
defaults are the fields', their help the fields' metadata. `--seed` defaults to the model's own
training seed, read from its config.json by the command.
"""

import dataclasses

from absl import flags

from flags import common
from flags import dataclass_flags as dcf
from nfi_tf.synthesis import SynthesisConfig, validate


@dataclasses.dataclass(frozen=True)
class GenerateOutput:
    """Where the command writes: not a synthesis setting (summary.json records those)."""

    out: str = dataclasses.field(metadata={
        "help": "Output directory: a PNG grid and a JSON report per class, overview.png and "
                "summary.json."})


def specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(SynthesisConfig)


def output_specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(GenerateOutput)


def _default_text(spec: dcf.FlagSpec) -> str | None:
    return "the training seed, or 0" if spec.field == "seed" else None


def define_generate_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train.",
                            flag_values=flag_values)
    common.define_data_dir(flag_values)
    dcf.define(specs(), default_text=_default_text, flag_values=flag_values)
    dcf.define(output_specs(), flag_values=flag_values)


def _classes(raw: list[str]) -> tuple[str, ...]:
    return tuple(c.strip() for c in raw if c.strip())


def generate_config_from_flags(values: flags.FlagValues, default_seed: int = 0) -> SynthesisConfig:
    """The one place where generate flags become a SynthesisConfig (seed None -> default_seed)."""
    fields = dcf.values_from_flags(values, specs(), converters={
        "classes": _classes, "seed": lambda raw: default_seed if raw is None else raw})
    return validate(SynthesisConfig(**fields))


def output_from_flags(values: flags.FlagValues) -> GenerateOutput:
    return GenerateOutput(**dcf.values_from_flags(values, output_specs()))
