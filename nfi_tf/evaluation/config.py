"""EvalConfig: what `python -m nfi_tf.evaluate` runs, built once from flags and passed down.

Every budget defaults to None where the dataset preset decides (TRADES' evaluation scripts:
MNIST eps 0.3, step 0.01, 40 steps; CIFAR-10 eps 0.031, step 0.003, 20 steps;
nfi_tf.config.PRESETS), whatever shorter per-epoch check the model was trained with.
AutoAttack's budgets default to its standard version (100 iterations, 9 targets, 5,000 Square
queries); a run below them says so next to its numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from nfi_tf.errors import NfiError, check
from nfi_tf.evaluation import shard as shards
from nfi_tf.evaluation import suite
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm, parse

SPLITS = ("test", "validation")
# The names of earlier releases.
ALIASES = {"apgd_dlr": Column.APGD_T, "adaptive": Column.ROUTE_AWARE}
# What an evaluation runs unless told: the clean inputs, PGD and CW (TRADES' evaluation),
# AutoAttack's suite its way, and the attacks that see through the routing switch.
DEFAULT_ATTACKS = (Column.CLEAN, Column.PGD, Column.CW, Column.AUTOATTACK, Column.ROUTE_AWARE)


def attack_options() -> tuple[str, ...]:
    """What --attacks accepts, in the order they run: clean (always computed), every registered
    attack (nfi_tf/evaluation/suite/) and `autoattack`, AutoAttack's suite run its way (each
    attack only on the points the previous ones left robust; one cumulative column), placed
    after the suite's last attack. Read from the registry each time, so an attack registered
    later is accepted too.

    On the routed model every gradient attack runs through the hard switch (the selected head's
    gradient), a straight-through switch and a soft switch, each iterate judged by the hard
    routed output; its column is the per-example worst of the three."""
    specs = suite.specs()
    return ((Column.CLEAN,) + tuple(s.option_name for s in specs if not s.routed_only)
            + (Column.AUTOATTACK,) + tuple(s.option_name for s in specs if s.routed_only))


ATTACKS = attack_options()  # the built-in attacks (what --help lists)


@dataclass(frozen=True)
class EvalConfig:
    model_dir: str
    # Flag help lives in `metadata` (flags/dataclass_flags.py); the attacks' budgets take
    # theirs from the registry (suite.Budget.help).
    attacks: tuple[str, ...] = field(default=DEFAULT_ATTACKS, metadata={
        "kind": "string",  # one comma-separated string on the command line, aliases accepted
        "help": f"Comma-separated subset of {','.join(ATTACKS)} (autoattack = APGD-CE, APGD-T, "
                "FAB-T, Square as AutoAttack runs them; route_aware = attacks that see through "
                "the routing switch)"})
    eval_examples: int | None = field(default=None, metadata={
        "kind": "string",  # a number, or "all"
        "help": "Use the first N test images, or all of them (all: 10,000 on MNIST and CIFAR-10)",
        "none": "the whole test split"})
    split: str = field(default="test", metadata={
        "help": "Images to evaluate: test, or validation (the images the model's training held "
                "out of its train split, --validation_examples; reports go to MODEL_DIR/validation/) "
                "- choose settings on validation, report on test"})
    batch_size: int = field(default=200, metadata={"help": "Images per attack batch"})
    seed: int | None = field(default=None, metadata={
        "help": "Random seed", "none": "the training seed"})
    epsilon: float | None = field(default=None, metadata={
        "help": "L-inf budget in [0, 1] pixels", "none": "the model's eval_attack.epsilon"})
    norm: Norm = field(default=Norm.LINF, metadata={
        "help": "Threat model: linf or l2 (eps in the same pixel units). Attacks without a version "
                "for the norm are skipped and the report says so"})
    step_size: float | None = field(default=None, metadata={
        "help": "PGD/CW step size", "none": "the model's eval_attack.step_size"})
    pgd_steps: int | None = field(default=None, metadata={
        "help": "PGD iterations", "none": "the model's eval_attack.num_steps"})
    cw_steps: int | None = field(default=None, metadata={
        "help": "CW-Linf iterations", "none": "as --pgd_steps"})
    cw_confidence: float = suite.standard("cw_confidence")
    apgd_steps: int = suite.standard("apgd_steps")
    apgd_restarts: int = suite.standard("apgd_restarts")
    apgd_targets: int = suite.standard("apgd_targets")
    fab_steps: int = suite.standard("fab_steps")
    fab_targets: int = suite.standard("fab_targets")
    square_queries: int = suite.standard("square_queries")
    route_steps: int = suite.standard("route_steps")
    route_targets: int = suite.standard("route_targets")
    route_temperatures: tuple[float, ...] = suite.standard("route_temperatures")
    # Outputs the white-box attacks target (None: every output). Every adversarial input is
    # still scored on every output, so the others get transfer numbers at no extra attack cost.
    attack_outputs: tuple[str, ...] | None = field(default=None, metadata={
        "help": "Outputs the white-box attacks target; every adversarial input is still scored "
                "on every output (transfer)", "none": "all"})
    onnx: str | None = field(default=None, metadata={
        "help": "An exported model.onnx: score every adversarial input on it and run Square "
                "against it through ONNX Runtime", "none": "none"})
    cascade: bool = field(default=False, metadata={
        "help": "Worst case in cascade: each attack runs only on the points every earlier attack "
                "left robust on the output it attacks, so the cost falls as points fall; the table "
                "then has clean and worst case only (per-attack columns need every image)"})
    save_adversarial: bool = field(default=False, metadata={
        "help": "Also keep each example's worst adversarial image per output in eval.npz"})
    overlap_top_k: int = field(default=10, metadata={
        "help": "k of the Figure 1 (right) top-k feature overlap"})
    data_dir: str | None = None  # None: the model's config data_dir, else tfds' default
    download: bool = True
    verbose: int = field(default=1, metadata={"help": "1: progress bar; 0: silent"})
    shard: str | None = field(default=None, metadata={
        "help": "Evaluate one shard of the images, I/N (0 <= I < N; env/N: I from JOB_COMPLETION_INDEX, "
                "SLURM_ARRAY_TASK_ID or NFI_SHARD_INDEX) into MODEL_DIR/shards/; gather them with "
                "--gather. The gathered report equals the unsharded one image for image",
        "none": "the whole evaluation in this process"})
    gather: bool = field(default=False, metadata={
        "help": "Join the shard records under MODEL_DIR/shards/ (made with --shard) into the report "
                "the unsharded evaluation writes; runs no attack (same flags as the shards)"})


ALL_EXAMPLES = "all"


def parse_examples(value) -> int | None:
    """--eval_examples: a number of images, or "all" (None: the whole test split)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in (ALL_EXAMPLES, "")):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NfiError(f"eval_examples must be a whole number or {ALL_EXAMPLES}. "
                       f"Received: eval_examples={value}") from None


def parse_attacks(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The attacks asked for (a comma-separated string or a sequence), in run order, as
    `Column` members (a registered attack outside the built-ins: its own name)."""
    options = attack_options()
    names = [a.strip() for a in (text.split(",") if isinstance(text, str) else text)]
    names = [ALIASES.get(a, a) for a in names if a]
    unknown = [a for a in names if a not in options]
    if unknown or not names:
        raise NfiError(f"attacks must be a comma-separated subset of {','.join(options)}. "
                       f"Received: attacks={','.join(names) if names else repr(text)}")
    known = {c.value: c for c in Column}
    return tuple(known.get(a, a) for a in options if a in names)  # canonical order, no duplicates


def validate(c: EvalConfig) -> EvalConfig:
    """Reject out-of-range settings with the offending value in the message."""
    check(bool(c.model_dir), "model_dir is required. Received: model_dir=None")
    parse_attacks(c.attacks)
    c = dataclasses.replace(c, eval_examples=parse_examples(c.eval_examples))
    check(c.eval_examples is None or c.eval_examples > 0,
          f"eval_examples must be > 0. Received: eval_examples={c.eval_examples}")
    check(c.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={c.batch_size}")
    c = dataclasses.replace(c, norm=parse(Norm, c.norm, "norm"))
    if c.epsilon is not None:
        if c.norm == Norm.L2:  # an L2 radius over the whole image may exceed one pixel's range
            check(math.isfinite(c.epsilon) and c.epsilon > 0,
                  f"epsilon must be > 0. Received: epsilon={c.epsilon}")
        else:
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
    check(c.split in SPLITS, f"split must be one of {', '.join(SPLITS)}. Received: split={c.split}")
    check(not (c.shard and c.gather), f"--shard runs one shard and --gather joins them: give one. "
                                      f"Received: shard={c.shard}, gather=True")
    shards.parse(c.shard)
    check(c.onnx is None or c.onnx.endswith(".onnx"),
          f"onnx is the path of an exported .onnx file. Received: onnx={c.onnx}")
    return c
