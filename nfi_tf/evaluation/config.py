"""EvalConfig: what `python -m nfi_tf.evaluate` runs, built once from flags and passed down.

Every budget defaults to None where the dataset preset decides (TRADES' evaluation scripts:
MNIST eps 0.3, step 0.01, 40 steps; CIFAR-10 eps 0.031, step 0.003, 20 steps;
nfi_tf.config.PRESETS), whatever shorter per-epoch check the model was trained with.
AutoAttack's budgets default to its standard version (100 iterations, 9 targets, 5,000 Square
queries); a run below them says so next to its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nfi_tf.errors import NfiError, check

# Attack families a user can ask for, in the order they run.
#   clean        no attack (always computed; accepted for symmetry)
#   pgd          PGD-CE with a uniform random start (TRADES' evaluation)
#   cw           CW-Linf: PGD on the CW margin loss
#   apgd_ce      APGD with cross-entropy (AutoAttack's first attack)
#   apgd_t       targeted APGD on AutoAttack's targeted DLR loss
#   fab_t        targeted FAB (minimum-norm; AutoAttack's third attack)
#   square       Square, gradient-free (AutoAttack's fourth attack)
#   autoattack   apgd_ce, apgd_t, fab_t and square as AutoAttack runs them: each attack only on
#                the points the previous ones left robust; one cumulative column
#   route_aware  routed model only: all heads at once, route-targeted attacks onto the benign and
#                the adversarial route, straight-through and soft switches at several temperatures
# On the routed model every gradient attack runs through the hard switch (the selected head's
# gradient), a straight-through switch and a soft switch, each iterate judged by the hard routed
# output; its column is the per-example worst of the three.
ATTACKS = ("clean", "pgd", "cw", "apgd_ce", "apgd_t", "fab_t", "square", "autoattack", "route_aware")
ALIASES = {"apgd_dlr": "apgd_t", "adaptive": "route_aware"}  # the names of earlier releases
AUTOATTACK_SUITE = ("apgd_ce", "apgd_t", "fab_t", "square")


@dataclass(frozen=True)
class EvalConfig:
    model_dir: str
    attacks: tuple[str, ...] = ("clean", "pgd", "cw", "autoattack", "route_aware")
    eval_examples: int | None = None  # None: the whole test split
    batch_size: int = 200
    seed: int | None = None  # None: the training seed
    epsilon: float | None = None  # None: the dataset preset's eval_attack.epsilon
    step_size: float | None = None  # None: the preset's eval_attack.step_size
    pgd_steps: int | None = None  # None: the preset's eval_attack.num_steps
    cw_steps: int | None = None  # None: as pgd_steps
    cw_confidence: float = 50.0  # TRADES' CW evaluation caps the margin at 50
    apgd_steps: int = 100  # AutoAttack's standard version: 100 iterations
    apgd_restarts: int = 1
    apgd_targets: int = 9  # AutoAttack's APGD-T: the 9 highest other classes (capped at C - 1)
    fab_steps: int = 100
    fab_targets: int = 9
    square_queries: int = 5000
    route_steps: int = 100  # iterations of each route-aware attack
    route_targets: int = 3  # wrong classes each route-targeted attack tries
    route_temperatures: tuple[float, ...] = (0.1, 1.0, 10.0)
    # Outputs the white-box attacks target (None: every output). Every adversarial input is
    # still scored on every output, so the others get transfer numbers at no extra attack cost.
    attack_outputs: tuple[str, ...] | None = None
    onnx: str | None = None  # an exported model.onnx: also attacked and scored through ONNX Runtime
    save_adversarial: bool = False  # keep each example's worst adversarial image per output
    overlap_top_k: int = 10  # Figure 1 (right)
    data_dir: str | None = None  # None: the model's config data_dir, else tfds' default
    download: bool = True
    verbose: int = 1


def parse_attacks(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = [a.strip() for a in (text.split(",") if isinstance(text, str) else text)]
    names = [ALIASES.get(a, a) for a in names if a]
    unknown = [a for a in names if a not in ATTACKS]
    if unknown or not names:
        raise NfiError(f"attacks must be a comma-separated subset of {','.join(ATTACKS)}. "
                       f"Received: attacks={','.join(names) if names else repr(text)}")
    return tuple(a for a in ATTACKS if a in names)  # canonical order, duplicates dropped


def validate(c: EvalConfig) -> EvalConfig:
    """Reject out-of-range settings with the offending value in the message."""
    check(bool(c.model_dir), "model_dir is required. Received: model_dir=None")
    parse_attacks(c.attacks)
    check(c.eval_examples is None or c.eval_examples > 0,
          f"eval_examples must be > 0. Received: eval_examples={c.eval_examples}")
    check(c.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={c.batch_size}")
    if c.epsilon is not None:
        check(math.isfinite(c.epsilon) and 0 < c.epsilon <= 1,
              f"epsilon is in (0, 1] pixel units (8/255 = 0.031). Received: epsilon={c.epsilon}")
    if c.step_size is not None:
        check(math.isfinite(c.step_size) and c.step_size > 0,
              f"step_size must be > 0. Received: step_size={c.step_size}")
    for name in ("pgd_steps", "cw_steps"):
        v = getattr(c, name)
        check(v is None or v >= 1, f"{name} must be >= 1. Received: {name}={v}")
    for name in ("apgd_steps", "apgd_restarts", "apgd_targets", "fab_steps", "fab_targets",
                 "square_queries", "route_steps", "route_targets", "overlap_top_k"):
        v = getattr(c, name)
        check(v >= 1, f"{name} must be >= 1. Received: {name}={v}")
    check(len(c.route_temperatures) > 0 and all(math.isfinite(t) and t > 0 for t in c.route_temperatures),
          f"route_temperatures must be > 0. Received: route_temperatures={c.route_temperatures}")
    check(c.cw_confidence > 0, f"cw_confidence must be > 0. Received: cw_confidence={c.cw_confidence}")
    check(c.attack_outputs is None or len(c.attack_outputs) > 0,
          f"attack_outputs must name at least one output. Received: attack_outputs={c.attack_outputs}")
    check(c.onnx is None or c.onnx.endswith(".onnx"),
          f"onnx is the path of an exported .onnx file. Received: onnx={c.onnx}")
    return c
