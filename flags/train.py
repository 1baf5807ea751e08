"""Flags of `python -m nfi_tf.train`, and the config they build.

The training flags are made from the fields of nfi_tf.config's groups (flags/dataclass_flags.py):
a new setting is one field with help metadata. Every one defaults to None, meaning "the dataset
preset" (TRADES' settings, nfi_tf.config.PRESETS), and its help shows what each preset gives; a
flag given on the command line overrides its preset value.
"""

from dataclasses import dataclass, field

from absl import flags

from flags import common
from flags import dataclass_flags as dcf
from nfi_tf.config import (
    PRESETS,
    AttackConfig,
    Config,
    DataConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    make_config,
)

# (config group, its class, flag-name prefix, help prefix, fields with no flag of their own)
_GROUPS = (
    # dataset picks the preset and data_dir is shared with the other commands: both are
    # defined below; the shuffle buffer is not a user setting.
    ("data", DataConfig, "", "", ("dataset", "data_dir", "shuffle_buffer")),
    ("model", ModelConfig, "", "", ()),
    ("attack", AttackConfig, "", "Training PGD ", ()),
    ("eval_attack", AttackConfig, "eval_", "Per-epoch evaluation PGD ", ()),
    ("loss", LossConfig, "", "", ()),
    ("train", TrainConfig, "", "", ()),
)


@dataclass(frozen=True)
class TrainCommand:
    """What the command does with the config: not a setting of the run (never in config.json)."""

    dry_run: bool = field(default=False, metadata={
        "help": "Print the run's summary, its estimated time (its FLOPs over an assumed rate, "
                "docs/training.md) and its config, then exit: nothing is trained, downloaded or "
                "written; --model_dir is not needed. --estimate is the same flag"})


def command_specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(TrainCommand)


def group_specs() -> dict[str, list[dcf.FlagSpec]]:
    """{config group: the flags made from its fields}."""
    return {group: dcf.flag_specs(cls, prefix=prefix, help_prefix=help_prefix, exclude=exclude)
            for group, cls, prefix, help_prefix, exclude in _GROUPS}


def preset_text(group: str, field: str, default) -> str | None:
    """'the dataset preset (mnist 40, cifar10 10)' when the presets differ on this setting,
    else None (the field's own default is shown)."""
    given = {name: preset.get(group, {}).get(field, default) for name, preset in PRESETS.items()}
    if len(set(given.values())) < 2:
        return None
    listed = ", ".join(f"{name} {dcf.format_value(v)}" for name, v in given.items())
    return f"the dataset preset ({listed})"


def define_train_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    common.define_model_dir(required=False, help_text="Where checkpoints, config, logs and the "
                            "model go. Rerunning with the same dir resumes. Required, but with "
                            "--dry_run.", flag_values=flag_values)
    dcf.define(command_specs(), flag_values=flag_values)
    flags.DEFINE_alias("estimate", "dry_run", flag_values=flag_values)
    flags.register_multi_flags_validator(
        ["model_dir", "dry_run"], lambda v: bool(v["model_dir"]) or v["dry_run"],
        message="--model_dir must have a value (only --dry_run runs without one)",
        flag_values=flag_values)
    common.define_data_dir(flag_values)
    common.define_cpu_devices(flag_values)
    presets = ", ".join(PRESETS)
    flags.DEFINE_string("dataset", DataConfig.dataset, "A tfds image classification dataset "
                        "(mnist, cifar10, cifar100, svhn_cropped, ...), folder:PATH (one "
                        "subfolder of PNG/JPEG images per class, or PATH/train and PATH/test "
                        "holding them) or PATH.npz (arrays x, y; optionally x_test, y_test). It "
                        f"picks the preset of every unset flag: TRADES' settings for {presets}; "
                        "other datasets get one derived from their images, printed at start.",
                        flag_values=flag_values)
    for group, specs in group_specs().items():
        dcf.define(specs, unset=True, flag_values=flag_values,
                   default_text=lambda spec, group=group: preset_text(group, spec.field, spec.default))


def train_config_from_flags(values: flags.FlagValues) -> Config:
    """The one place where training flags become a Config."""
    from nfi_tf.data import require_known_dataset

    require_known_dataset(values["dataset"].value)
    overrides: dict[str, dict] = {}
    for group, specs in group_specs().items():
        given = dcf.values_from_flags(values, specs, skip_none=True)
        if given:
            overrides[group] = given
    overrides.setdefault("data", {})["data_dir"] = values["data_dir"].value
    return make_config(values["dataset"].value, overrides)
