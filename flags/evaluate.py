"""Flags of `python -m nfi_tf.evaluate`, and the EvalConfig they build.

Budgets default to None: the model dir's own evaluation settings (the dataset preset, TRADES'
evaluation scripts); a flag given on the command line overrides them. AutoAttack's budgets
default to its standard version.
"""

from absl import flags

from flags import common
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.config import ATTACKS, EvalConfig, parse_attacks, validate

_D = EvalConfig.__dataclass_fields__


def define_evaluate_flags() -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train; eval.json, "
                            "eval.md, eval.npz and feature_overlap.{json,png} are written into it.")
    common.define_data_dir()
    common.define_seed()
    f = flags
    f.DEFINE_string("attacks", ",".join(_D["attacks"].default),
                    f"Comma-separated subset of {','.join(ATTACKS)} (autoattack = APGD-CE, APGD-T, "
                    "FAB-T, Square as AutoAttack runs them; route_aware = attacks that see through the "
                    "routing switch).")
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
                     "Target classes of APGD-T (AutoAttack: 9; capped at classes - 1).")
    f.DEFINE_integer("fab_steps", _D["fab_steps"].default, "FAB-T iterations (AutoAttack: 100).")
    f.DEFINE_integer("fab_targets", _D["fab_targets"].default, "Target classes of FAB-T (AutoAttack: 9).")
    f.DEFINE_integer("square_queries", _D["square_queries"].default, "Square queries (AutoAttack: 5000).")
    f.DEFINE_integer("route_steps", _D["route_steps"].default, "Steps of each route-aware attack.")
    f.DEFINE_integer("route_targets", _D["route_targets"].default,
                     "Wrong classes each route-targeted attack tries.")
    f.DEFINE_list("route_temperatures", [f"{t:g}" for t in _D["route_temperatures"].default],
                  "Temperatures of the straight-through and soft switches (on std-normalized scores).")
    f.DEFINE_list("attack_outputs", None, "Outputs the white-box attacks target (default: all); every "
                  "adversarial input is still scored on every output (transfer).")
    f.DEFINE_string("onnx", None, "An exported model.onnx: score every adversarial input on it and run "
                    "Square against it through ONNX Runtime.")
    f.DEFINE_bool("save_adversarial", False, "Also keep each example's worst adversarial image per "
                  "output in eval.npz.")
    f.DEFINE_list("merge", None, "Merge these eval.npz files (several runs on one model) into one "
                  "per-example worst case in --model_dir/eval_merged.{json,md}; runs no attack.")
    f.DEFINE_integer("overlap_top_k", _D["overlap_top_k"].default,
                     "k of the Figure 1 (right) top-k feature overlap.")
    f.DEFINE_integer("verbose", 1, "1: progress bar; 0: silent.")


def _temperatures(values: list[str]) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except ValueError as e:
        raise NfiError(f"route_temperatures takes comma-separated numbers. "
                       f"Received: route_temperatures={','.join(values)}") from e


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
        fab_steps=v("fab_steps"),
        fab_targets=v("fab_targets"),
        square_queries=v("square_queries"),
        route_steps=v("route_steps"),
        route_targets=v("route_targets"),
        route_temperatures=_temperatures(v("route_temperatures")),
        attack_outputs=tuple(v("attack_outputs")) if v("attack_outputs") else None,
        onnx=v("onnx"),
        save_adversarial=v("save_adversarial"),
        overlap_top_k=v("overlap_top_k"),
        data_dir=v("data_dir"),
        download=v("download"),
        verbose=v("verbose"),
    ))
