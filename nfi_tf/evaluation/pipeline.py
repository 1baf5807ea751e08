"""The evaluation pipeline, one way for every model under test: plan -> outcomes -> report.

    result = pipeline.evaluate(subject, cfg, x, labels, pgd, seed)

`subject` (subject.py) is the model under test, however it was made; `make_plan` (plan.py)
lists and builds the attacks, `outcomes.run` runs them, `report.build` turns the outcomes into
an EvalReport, and the reports are written into the subject's out_dir (eval.json, eval.md,
eval.npz). The command line (`runner.evaluate_model`) and `evaluate_classifier` both end here.

Sharded (shard.py, shard_records.py): with `cfg.shard` the outcomes of one slice of the batches
are written as a shard record and nothing else; with `cfg.gather` the shards' outcomes replace
the run, and the report is built and written exactly as the unsharded run's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable

import numpy as np

from nfi_tf.errors import check
from nfi_tf.evaluation import outcomes as outcomes_lib
from nfi_tf.evaluation import records, shard_records
from nfi_tf.evaluation import shard as shards
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.plan import Plan, make_plan
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


def _identity(plan: Plan) -> dict:
    """What every shard of one evaluation shares (checked when they are gathered)."""
    return {"model": plan.subject.fingerprint, "seed": plan.seed,
            "settings": shards.settings_digest(plan.cfg, plan.seed, len(plan.labels))}


def _result(report: EvalReport, o: outcomes_lib.Outcomes) -> EvalResult:
    return EvalResult(report, o.labels, o.correct, o.worst(), o.max_linf, o.pixel_range)


def _run_shard(plan: Plan, shard: shards.Shard, log) -> EvalResult:
    """One shard: its batches' outcomes written as a shard record (no eval.json: gather makes it)."""
    total = outcomes_lib.batch_count(plan)
    shards.check_batches(shard, total, plan.cfg.batch_size)
    batches = shard.batches(total)
    o = outcomes_lib.run(plan, batches, log)
    file = shards.path(plan.subject.out_dir, shard)
    shard_records.save(file, shard, _identity(plan), o)
    alone = dataclasses.replace(plan, subject=dataclasses.replace(plan.subject, out_dir=None))
    log(f"shard {shard}: images {o.indices[0]}-{o.indices[-1]} (batches {batches.start}-{batches.stop - 1} "
        f"of {total}) written to {file}; when every shard is done, run the same command with --gather")
    return _result(build.report(alone, o), o)


def evaluate(subject: Subject, cfg, x: np.ndarray, labels: np.ndarray, pgd, seed: int, *,
             notes=(), trailing_notes=(), started: float | None = None,
             log: Callable[[str], None] = print) -> EvalResult:
    """Plan, run and report an evaluation of `subject` on (x, labels); `pgd` is PGD's
    AttackConfig, `notes` what the caller knows (before the plan's notes in the report),
    `trailing_notes` after them."""
    started = time.time() if started is None else started
    shard = shards.parse(cfg.shard)
    check(not (shard or cfg.gather) or bool(subject.out_dir),
          "a sharded evaluation needs a directory for its records (out_dir / --model_dir)")
    with quiet_retracing():
        plan = make_plan(subject, cfg, x, labels, pgd, seed, notes)
        plan.notes += list(trailing_notes)
        if shard is not None:
            return _run_shard(plan, shard, log)
        if cfg.gather:
            outcomes = shard_records.gather(subject.out_dir, _identity(plan), len(labels))
        else:
            outcomes = outcomes_lib.run(plan, None, log if cfg.verbose else None)
        result = build.report(plan, outcomes)
    result.seconds = round(sum(outcomes.seconds.values()) if cfg.gather else time.time() - started, 1)
    if subject.out_dir:
        write(subject.out_dir, result)
        records.save(os.path.join(subject.out_dir, EVAL_NPZ), build.meta(plan, result), outcomes.labels,
                     outcomes.correct, outcomes.margins,
                     outcomes.worst_images() if cfg.save_adversarial else None)
    log(render.text_table(result))
    return _result(result, outcomes)
