"""The evaluation pipeline, one way for every model under test: plan -> outcomes -> report.

    result = pipeline.evaluate(subject, cfg, x, labels, pgd, seed)

`subject` (subject.py) is the model under test, however it was made; `make_plan` (plan.py)
lists and builds the attacks, `outcomes.run` runs them, `report.build` turns the outcomes into
an EvalReport, and the reports are written into the subject's out_dir (eval.json, eval.md,
eval.npz). The command line (`runner.evaluate_model`) and `evaluate_classifier` both end here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable

import numpy as np

from nfi_tf.evaluation import outcomes as outcomes_lib
from nfi_tf.evaluation import records
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.plan import make_plan
from nfi_tf.evaluation.report import EVAL_NPZ, EvalReport, build, render, write
from nfi_tf.evaluation.subject import Subject


@dataclasses.dataclass
class EvalResult:
    report: EvalReport  # what eval.json holds
    labels: np.ndarray
    correct: dict[str, dict[AttackKey, np.ndarray]]  # row -> attack key -> [N] bool
    worst: dict[str, np.ndarray]  # row -> [N] bool, the per-example worst case
    max_linf: dict[AttackKey, float]  # attack key -> largest |x' - x|_inf seen
    pixel_range: dict[AttackKey, tuple[float, float]]  # attack key -> (min, max) of x'


class _DropRetracingWarnings(logging.Filter):
    """Each attack is its own tf.function, traced once (twice with a short last batch): TF's
    "excessive retracing" warning counts them together and would fire on every evaluation."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def quiet_retracing():
    logger, f = logging.getLogger("tensorflow"), _DropRetracingWarnings()
    logger.addFilter(f)
    try:
        yield
    finally:
        logger.removeFilter(f)


def evaluate(subject: Subject, cfg, x: np.ndarray, labels: np.ndarray, pgd, seed: int, *,
             notes=(), trailing_notes=(), started: float | None = None,
             log: Callable[[str], None] = print) -> EvalResult:
    """Plan, run and report an evaluation of `subject` on (x, labels); `pgd` is PGD's
    AttackConfig, `notes` what the caller knows (before the plan's notes in the report),
    `trailing_notes` after them."""
    started = time.time() if started is None else started
    with quiet_retracing():
        plan = make_plan(subject, cfg, x, labels, pgd, seed, notes)
        plan.notes += list(trailing_notes)
        outcomes = outcomes_lib.run(plan)
        result = build.report(plan, outcomes)
    result.seconds = round(time.time() - started, 1)
    if subject.out_dir:
        write(subject.out_dir, result)
        records.save(os.path.join(subject.out_dir, EVAL_NPZ), build.meta(plan, result), outcomes.labels,
                     outcomes.correct, outcomes.margins,
                     outcomes.worst_images() if cfg.save_adversarial else None)
    log(render.text_table(result))
    return EvalResult(result, outcomes.labels, outcomes.correct, outcomes.worst(), outcomes.max_linf,
                      outcomes.pixel_range)
