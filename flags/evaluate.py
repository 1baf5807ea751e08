"""Flags of `python -m nfi_tf.evaluate`, and the EvalConfig they build.

Budgets default to None: the model dir's own evaluation settings (the dataset preset, TRADES'
evaluation scripts); a flag given on the command line overrides them.
"""

from absl import flags

from flags import common
from nfi_tf.evaluation.config import ATTACKS, EvalConfig, parse_attacks, validate

_D = EvalConfig.__dataclass_fields__


def define_evaluate_flags() -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train; eval.json, "
                            "eval.md and feature_overlap.{json,png} are written into it.")
    common.define_data_dir()
    common.define_seed()
    f = flags
    f.DEFINE_string("attacks", ",".join(ATTACKS), f"Comma-separated subset of {','.join(ATTACKS)}.")
    f.DEFINE_integer("eval_examples", None, "Use the first N test images (default: the whole test split).")
    f.DEFINE_integer("batch_size", _D["batch_size"].default, "Images per attack batch.")
    f.DEFINE_float("epsilon", None, "L-inf budget in [0, 1] pixels (default: the dataset preset, "
                   "as TRADES evaluates: MNIST 0.3, CIFAR 0.031).")
    f.DEFINE_float("step_size", None, "PGD/CW step size (default: MNIST 0.01, CIFAR 0.003).")
    f.DEFINE_integer("pgd_steps", None, "PGD iterations (default: MNIST 40, CIFAR 20).")
    f.DEFINE_integer("cw_steps", None, "CW-Linf iterations (default: as --pgd_steps).")
    f.DEFINE_integer("apgd_steps", _D["apgd_steps"].default, "APGD iterations (AutoAttack: 100).")
    f.DEFINE_integer("apgd_restarts", _D["apgd_restarts"].default, "APGD random restarts.")
    f.DEFINE_integer("apgd_targets", _D["apgd_targets"].default,
                     "Target classes of targeted APGD-DLR (AutoAttack: 9; capped at classes - 1).")
    f.DEFINE_float("switch_temperature", _D["switch_temperature"].default,
                   "Temperature of the soft / straight-through routing switch.")
    f.DEFINE_integer("overlap_top_k", _D["overlap_top_k"].default,
                     "k of the Figure 1 (right) top-k feature overlap.")
    f.DEFINE_integer("verbose", 1, "1: progress bar; 0: silent.")


def eval_config_from_flags(values: flags.FlagValues) -> EvalConfig:
    """The one place where evaluation flags become an EvalConfig."""
    v = lambda name: values[name].value
    return validate(EvalConfig(
        model_dir=v("model_dir"),
        attacks=parse_attacks(v("attacks")),
        eval_examples=v("eval_examples"),
        batch_size=v("batch_size"),
        seed=v("seed"),
        epsilon=v("epsilon"),
        step_size=v("step_size"),
        pgd_steps=v("pgd_steps"),
        cw_steps=v("cw_steps"),
        apgd_steps=v("apgd_steps"),
        apgd_restarts=v("apgd_restarts"),
        apgd_targets=v("apgd_targets"),
        switch_temperature=v("switch_temperature"),
        overlap_top_k=v("overlap_top_k"),
        data_dir=v("data_dir"),
        download=v("download"),
        verbose=v("verbose"),
    ))
