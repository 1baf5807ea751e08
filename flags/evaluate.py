"""Flags of `python -m nfi_tf.evaluate`, and the EvalConfig they build.

The flags are made from EvalConfig's fields (flags/dataclass_flags.py): their defaults are the
fields', their help the fields' metadata, or for the attacks' budgets the attack registry's
(nfi_tf/evaluation/suite). PGD's budget defaults to None: the model dir's own evaluation
settings (the dataset preset, TRADES' evaluation scripts); a flag given on the command line
overrides them. AutoAttack's budgets default to its standard version.
"""

import os

from absl import flags

from flags import common
from flags import dataclass_flags as dcf
from flags.train import preset_text
from nfi_tf.evaluation.classifier import ClassifierSource
from nfi_tf.evaluation.config import EvalConfig, parse_attacks, parse_examples, validate
from nfi_tf.evaluation.suite import registry

# model_dir, data_dir and download are the flags every command shares (flags/common.py).
_EXCLUDE = ("model_dir", "data_dir", "download")
# The flags with a syntax of their own.
_CONVERTERS = {"attacks": parse_attacks, "eval_examples": parse_examples}
# None means the model's own eval_attack setting: its field there.
_EVAL_ATTACK = {"epsilon": "epsilon", "step_size": "step_size", "pgd_steps": "num_steps"}


def specs() -> list[dcf.FlagSpec]:
    budgets = {b.field: {"help": b.help} for b in registry.budgets() if b.help}
    return dcf.flag_specs(EvalConfig, exclude=_EXCLUDE, metadata=budgets)


def _default_text(spec: dcf.FlagSpec) -> str | None:
    if spec.field not in _EVAL_ATTACK:
        return None
    preset = preset_text("eval_attack", _EVAL_ATTACK[spec.field], None)
    return f"{spec.none}: {preset}, unless set in training"


def source_specs() -> list[dcf.FlagSpec]:
    return dcf.flag_specs(ClassifierSource)


def define_evaluate_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    # Not required: a classifier nfi-tf did not train comes with --keras_model, --saved_model or
    # --onnx instead (then --model_dir, if given, is only where the reports go).
    common.define_model_dir(required=False, help_text="A model dir written by python -m nfi_tf.train; "
                            "eval.json, eval.md, eval.npz and feature_overlap.{json,png} are written "
                            "into it.", flag_values=flag_values)
    common.define_data_dir(flag_values)
    dcf.define(specs(), default_text=_default_text, flag_values=flag_values)
    dcf.define(source_specs(), flag_values=flag_values)
    # --examples is the name the issue tracker and the docs of other tools use for it.
    flags.DEFINE_alias("examples", "eval_examples", flag_values=flag_values)
    flags.DEFINE_list("merge", None, "Merge these eval.npz files (several runs on one model) into one "
                      "per-example worst case in --model_dir/eval_merged.{json,md}; runs no attack.",
                      flag_values=flag_values)


def is_classifier_mode(values: flags.FlagValues) -> bool:
    """--keras_model/--saved_model, or --onnx without a trained model dir (--model_dir is then only
    where the reports go): a classifier nfi-tf did not train."""
    model_dir = values["model_dir"].value
    trained = bool(model_dir) and os.path.exists(os.path.join(model_dir, "model.keras"))
    return bool(values["keras_model"].value or values["saved_model"].value
                or (values["onnx"].value and not trained))


def source_from_flags(values: flags.FlagValues) -> tuple[ClassifierSource, dict]:
    """The classifier mode's source, and the EvalConfig fields given on the command line."""
    source = ClassifierSource(**dcf.values_from_flags(values, source_specs()))
    every = dcf.values_from_flags(values, specs(), converters=_CONVERTERS)
    given = {s.field: every[s.field] for s in specs() if values[s.flag].present}
    return source, given


def eval_config_from_flags(values: flags.FlagValues) -> EvalConfig:
    """The one place where evaluation flags become an EvalConfig."""
    fields = dcf.values_from_flags(values, specs(), converters=_CONVERTERS)
    return validate(EvalConfig(model_dir=values["model_dir"].value,
                               data_dir=values["data_dir"].value,
                               download=values["download"].value, **fields))
