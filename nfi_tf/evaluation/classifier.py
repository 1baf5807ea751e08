"""Evaluate any classifier: the registry's attacks on a model nfi-tf did not train.

    report = nfi_tf.evaluate_classifier(model, x, y, epsilon=8/255)       # AutoAttack, standard
    report.report.cell("logits", "autoattack")                            # robust accuracy

`model` is a Keras model (logits output, or a dict/list output with `output=` naming the
logits), any callable images -> logits, a `.keras` file, a SavedModel directory or an `.onnx`
file. Images are float NHWC in [0, 1] (uint8 is divided by 255); eps is in those pixel units.
A model that expects other inputs is wrapped: it sees `((x * input_scale + input_offset) -
mean) / std`, stated in the report.

The suite is AutoAttack's (APGD-CE, APGD-T, FAB-T, Square) in its order, each attack only on the
points the previous ones left robust, so its cost falls with the share already broken;
`attacks=("clean", "apgd_ce", ...)` gives per-attack columns on every image instead. `norm="l2"`
runs the same four in their L2 versions (eps the L2 radius); a requested attack that has no L2
version (PGD, CW-Linf, the route-aware ones) is named in the notes as skipped.

An ONNX file is scored by ONNX Runtime on the file itself (every adversarial image is re-scored
there) and attacked by Square through it; the gradient attacks run on a differentiable twin
(twins.py): by default (`twin="auto"`) one built from the ONNX graph itself, or one written by
hand (`twin=` a Keras model, a callable or a .keras file; NHWC or the file's layout). It is
checked against ONNX Runtime on the evaluation's own images before it is trusted: a twin that
disagrees, or a graph with an operator the automatic twin does not support, is a one-line error.
`twin="none"` runs the gradient-free attack alone, and the report says so.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import numpy as np

from nfi_tf.config import AttackConfig
from nfi_tf.errors import check
from nfi_tf.evaluation import pipeline, suite
from nfi_tf.evaluation.adapters import InputTransform
from nfi_tf.evaluation.config import EvalConfig, parse_attacks, validate
from nfi_tf.evaluation.subjects import load_subject
from nfi_tf.evaluation.twins import TwinChoice
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm

PLAIN_SUITE = (Column.CLEAN, Column.AUTOATTACK)


@dataclasses.dataclass(frozen=True)
class ClassifierSource:
    """`python -m nfi_tf.evaluate` on a classifier nfi-tf did not train: what it is, which test
    images, and how it takes them (the attacks' settings are EvalConfig's)."""

    keras_model: str | None = dataclasses.field(default=None, metadata={
        "help": "Evaluate this Keras model file (.keras/.h5) instead of a --model_dir", "none": "none"})
    saved_model: str | None = dataclasses.field(default=None, metadata={
        "help": "Evaluate this SavedModel directory instead of a --model_dir", "none": "none"})
    dataset: str | None = dataclasses.field(default=None, metadata={
        "help": "Test images for --keras_model/--saved_model/--onnx without --model_dir "
                "(a tfds name: mnist, cifar10)", "none": "none"})
    output: str | None = dataclasses.field(default=None, metadata={
        "help": "The model's logits output, when it has several", "none": "its only output, or 'logits'"})
    twin: str = dataclasses.field(default=TwinChoice.AUTO.value, metadata={
        "help": "The differentiable twin of --onnx the gradient attacks run on (checked against ONNX "
                "Runtime first): auto (built from the ONNX graph), none (Square alone), or a Keras "
                "model file (.keras/.h5) of the same network, in the file's layout or NHWC"})
    budget: str = dataclasses.field(default="standard", metadata={
        "help": "Named attack budget: standard (AutoAttack's) or cpu; single budget flags given "
                "on the command line override it"})
    input_scale: float = dataclasses.field(default=1.0, metadata={
        "help": "The model sees x * input_scale + input_offset (x in [0, 1]), e.g. 255"})
    input_offset: float = dataclasses.field(default=0.0, metadata={"help": "See --input_scale"})
    mean: tuple[float, ...] | None = dataclasses.field(default=None, metadata={
        "help": "Per-channel mean subtracted after the scale (then divided by --std)", "none": "none"})
    std: tuple[float, ...] | None = dataclasses.field(default=None, metadata={
        "help": "Per-channel std the model divides by", "none": "none"})

    @property
    def model(self) -> str | None:
        return self.keras_model or self.saved_model


def evaluate_source(source: ClassifierSource, given: dict, onnx_path: str | None, out_dir: str | None,
                    data_dir: str | None = None, download: bool = True,
                    log: Callable[[str], None] = print):
    """The CLI's classifier mode: the dataset's test images, then evaluate_classifier. `given`:
    the EvalConfig fields set on the command line (the rest come from the budget and defaults)."""
    from nfi_tf import data
    from nfi_tf.config import make_config

    paths = [p for p in (source.keras_model, source.saved_model, onnx_path) if p]
    check(len(paths) == 1, "give exactly one of --model_dir, --keras_model, --saved_model, --onnx. "
                           f"Received: {', '.join(paths) or 'none'}")
    check(bool(source.dataset), "--dataset is required with --keras_model, --saved_model or --onnx "
                                "(the test images to attack). Received: dataset=None")
    preset = make_config(source.dataset)
    data_cfg = dataclasses.replace(preset.data, data_dir=data_dir) if data_dir else preset.data
    images, labels = data.load_arrays(data_cfg, "test", given.get("eval_examples"), download)
    given = {k: v for k, v in given.items() if k not in ("eval_examples", "onnx")}
    epsilon = given.pop("epsilon", None) or preset.eval_attack.epsilon
    return evaluate_classifier(paths[0], images, labels, epsilon=float(epsilon), budget=source.budget,
                               output=source.output, input_scale=source.input_scale,
                               input_offset=source.input_offset, mean=source.mean, std=source.std,
                               twin=source.twin, out_dir=out_dir, dataset=preset.data.dataset, log=log,
                               **given)


def _check_images(x, y):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    check(x.ndim == 4, f"images must be [N, height, width, channels]. Received: shape={x.shape}")
    check(np.issubdtype(x.dtype, np.floating), f"images must be float in [0, 1] or uint8. "
                                               f"Received: dtype={x.dtype}")
    x = x.astype(np.float32)
    check(bool(np.all(np.isfinite(x))), "images contain NaN or infinite values")
    check(float(x.min()) >= 0.0 and float(x.max()) <= 1.0,
          f"images must be in [0, 1] (pass uint8, or wrap a model that expects other inputs with "
          f"input_scale/input_offset/mean/std). Received: range [{x.min():g}, {x.max():g}]")
    y = np.asarray(y)
    check(y.ndim == 1 and len(y) == len(x), f"labels must be [N] with N = {len(x)} images. "
                                            f"Received: shape={y.shape}")
    check(np.issubdtype(y.dtype, np.integer), f"labels must be integers. Received: dtype={y.dtype}")
    return x, y.astype(np.int32)


def evaluate_classifier(model, x, y, *, epsilon: float, norm: str = Norm.LINF, budget: str = "standard",
                        attacks=None, output: str | None = None, input_scale: float = 1.0,
                        input_offset: float = 0.0, mean=None, std=None, twin=None, seed: int = 0,
                        batch_size: int = 200, out_dir: str | None = None, dataset: str = "custom",
                        log: Callable[[str], None] | None = None, **budget_overrides):
    """Run the attack registry on any classifier; returns the pipeline's EvalResult (`.report` is
    the typed EvalReport; `.correct["logits"]` the per-example correctness per attack).

    budget: "standard" (AutoAttack's) or "cpu"; single settings (e.g. apgd_steps=20) override it.
    out_dir: also write eval.json, eval.md and eval.npz there.
    twin: an ONNX file's differentiable twin: None or "auto" (built from the graph), "none"
    (Square alone), or a hand-written one (a Keras model, a callable or a .keras file).
    """
    started = time.time()
    x, y = _check_images(x, y)
    transform = InputTransform(float(input_scale), float(input_offset),
                               None if mean is None else tuple(np.atleast_1d(mean).tolist()),
                               None if std is None else tuple(np.atleast_1d(std).tolist()))
    values = {"verbose": 0, **suite.budget(budget), **budget_overrides}
    with pipeline.quiet_retracing():
        subject = load_subject(model, x, output=output, transform=transform, twin=twin,
                               batch_size=int(batch_size), dataset=dataset, out_dir=out_dir)
    if attacks is None:  # a routed model keeps its route-aware attacks
        attacks = PLAIN_SUITE + ((Column.ROUTE_AWARE,) if subject.routed else ())
    cfg = validate(EvalConfig(model_dir=out_dir or "(in memory)", attacks=parse_attacks(attacks),
                              batch_size=int(batch_size), seed=int(seed), epsilon=float(epsilon),
                              norm=norm, **values))
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    check(int(y.max(initial=0)) < subject.num_classes and int(y.min(initial=0)) >= 0,
          f"labels must be in [0, {subject.num_classes - 1}] (the model has {subject.num_classes} "
          f"outputs). Received: range [{y.min()}, {y.max()}]")
    pgd = AttackConfig(epsilon=cfg.epsilon, step_size=cfg.step_size or cfg.epsilon / 4,
                       num_steps=cfg.pgd_steps or 20)
    return pipeline.evaluate(subject, cfg, x, y, pgd, int(seed), started=started,
                             log=log or (lambda m: None))
