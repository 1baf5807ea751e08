"""`evaluate_model(EvalConfig)`: evaluate a model dir `python -m nfi_tf.train` wrote.

Loads the model dir as a subject (subjects.from_trained), its test images (or the validation
images its training held out, --split=validation), PGD's settings (the dataset preset's,
TRADES' evaluation, unless flags set them) and hands them to the pipeline (pipeline.py), which
writes eval.json, eval.md, eval.npz and Figure 1 into the model dir (or its validation/).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

from nfi_tf import data, model_io
from nfi_tf.config import AttackConfig, make_config
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import pipeline, subjects
from nfi_tf.evaluation.config import EvalConfig, validate
from nfi_tf.evaluation.onnx_session import OnnxModel
from nfi_tf.evaluation.pipeline import EvalResult
from nfi_tf.evaluation.subject import with_exported
from nfi_tf.outputs import ROUTED

EXPORT_HINT = "export one with python -m export.to_onnx"


def report_dir(cfg: EvalConfig) -> str:
    """Where an evaluation of a model dir writes its reports: the model dir itself, or its
    `validation/` subdirectory for --split=validation (the test report stays untouched)."""
    return os.path.join(cfg.model_dir, "validation") if cfg.split == "validation" else cfg.model_dir


def attack_settings(cfg: EvalConfig, base: AttackConfig) -> AttackConfig:
    """PGD's eps, step and steps: the flags where given, else `base`."""
    return AttackConfig(
        epsilon=float(cfg.epsilon if cfg.epsilon is not None else base.epsilon),
        step_size=float(cfg.step_size if cfg.step_size is not None else base.step_size),
        num_steps=int(cfg.pgd_steps if cfg.pgd_steps is not None else base.num_steps))


def _images(cfg: EvalConfig, data_cfg) -> tuple:
    """(images uint8, labels, notes): the first test images, or the held-out validation ones."""
    if cfg.split != "validation":
        images, labels = data.load_arrays(data_cfg, "test", cfg.eval_examples, cfg.download)
        return images, labels, []
    if not data_cfg.validation_examples:
        raise NfiError(f"--split=validation needs a model trained with --validation_examples > 0; "
                       f"{cfg.model_dir} held no images out of its train split")
    split = data.validation_split(data_cfg, cfg.download)
    n = data_cfg.validation_examples if cfg.eval_examples is None else min(
        cfg.eval_examples, data_cfg.validation_examples)
    images, labels = data.load_arrays(data_cfg, split, None, cfg.download)
    os.makedirs(report_dir(cfg), exist_ok=True)
    return images[:n], labels[:n], [f"evaluated on {n} validation images (held out of the train "
                                    f"split: {split}), not on test images"]


def evaluate_model(cfg: EvalConfig, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate the model in `cfg.model_dir`; writes eval.json, eval.md, eval.npz and Figure 1."""
    started = time.time()
    cfg = validate(cfg)
    trained = model_io.load_trained(cfg.model_dir, download=cfg.download)
    config = trained.config
    data_cfg = dataclasses.replace(config.data, data_dir=cfg.data_dir) if cfg.data_dir else config.data
    # TRADES' evaluation settings for the dataset, not the model's per-epoch check (which a
    # quick training run may have shortened); flags override either.
    pgd = attack_settings(cfg, make_config(config.data.dataset).eval_attack)
    notes = []
    if abs(config.attack.epsilon - pgd.epsilon) > 1e-9:
        notes.append(f"the model was trained with epsilon {config.attack.epsilon:g} and is evaluated "
                     f"at epsilon {pgd.epsilon:g}")
    subject = subjects.from_trained(trained, report_dir(cfg))
    if cfg.onnx:
        subject = with_exported(subject, OnnxModel(cfg.onnx, ROUTED, batch_size=cfg.batch_size,
                                                   missing_hint=EXPORT_HINT))
    images, labels, split_notes = _images(cfg, data_cfg)
    seed = int(cfg.seed if cfg.seed is not None else config.train.seed)
    # The validation note comes after the plan's own (as the report has always listed them).
    return pipeline.evaluate(subject, cfg, data.uint8_to_float(images), labels, pgd, seed,
                             notes=notes, trailing_notes=split_notes, started=started, log=log)
