"""`evaluate_model(EvalConfig)`: load a model dir, run the attack plan batch by batch, report.

Per batch: the clean outputs, then every planned attack (attacks_adaptive.plan) generates x';
every x' is scored on every output (row), so transfers cost only a forward pass. At the end the
per-example results become the table (worst_case.py), the routed model's adaptive summary,
route statistics (routes.py) and the Figure 1 (right) analysis (feature_overlap.py); report.py
writes eval.json and eval.md into the model dir.

Determinism: PGD starts are stateless draws keyed by (seed, attack key, batch index); APGD runs
under a NumPy seed derived from the same triple. Same seed, same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import zlib
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from nfi_tf import data, model_io
from nfi_tf.config import AttackConfig, make_config
from nfi_tf.evaluation import attacks_adaptive, attacks_pgd, autoattack, feature_overlap, report
from nfi_tf.evaluation import routes as routes_lib
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.config import EvalConfig, validate
from nfi_tf.models.heads import ROUTE_NAMES

OVERLAP_JSON = "feature_overlap.json"
OVERLAP_PNG = "feature_overlap.png"


@dataclasses.dataclass
class EvalResult:
    report: dict  # what eval.json holds
    labels: np.ndarray
    correct: dict[str, dict[str, np.ndarray]]  # row -> attack key -> [N] bool
    worst: dict[str, np.ndarray]  # row -> [N] bool, the per-example worst case
    max_linf: dict[str, float]  # attack key -> largest |x' - x|_inf seen
    pixel_range: dict[str, tuple[float, float]]  # attack key -> (min, max) of x'


def _attack_settings(cfg: EvalConfig, base: AttackConfig) -> AttackConfig:
    return AttackConfig(
        epsilon=float(cfg.epsilon if cfg.epsilon is not None else base.epsilon),
        step_size=float(cfg.step_size if cfg.step_size is not None else base.step_size),
        num_steps=int(cfg.pgd_steps if cfg.pgd_steps is not None else base.num_steps))


def _pgd_seed(seed: int, key: str, batch: int) -> tf.Tensor:
    return tf.constant([seed, zlib.crc32(key.encode()) * 2**20 + batch], tf.int64)


class _DropRetracingWarnings(logging.Filter):
    """Each attack is its own tf.function, traced once (twice with a short last batch): TF's
    "excessive retracing" warning counts them together and would fire on every evaluation."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing():
    logger, f = logging.getLogger("tensorflow"), _DropRetracingWarnings()
    logger.addFilter(f)
    try:
        yield
    finally:
        logger.removeFilter(f)


def evaluate_model(cfg: EvalConfig, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate the model in `cfg.model_dir`; writes eval.json, eval.md and the overlap figure."""
    with _quiet_retracing():
        return _evaluate(validate(cfg), log)


def _evaluate(cfg: EvalConfig, log: Callable[[str], None]) -> EvalResult:
    started = time.time()
    trained = model_io.load_trained(cfg.model_dir, download=cfg.download)
    config, info, classifier = trained.config, trained.info, trained.classifier
    data_cfg = config.data
    if cfg.data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=cfg.data_dir)
    # TRADES' evaluation settings for the dataset, not the model's per-epoch check (which a
    # quick training run may have shortened); flags override either.
    attack = _attack_settings(cfg, make_config(config.data.dataset).eval_attack)
    cw_attack = dataclasses.replace(attack, num_steps=int(cfg.cw_steps or attack.num_steps))
    seed = int(cfg.seed if cfg.seed is not None else config.train.seed)
    method = config.model.method
    rows = attacks_adaptive.rows_for(method)
    planned = attacks_adaptive.plan(method, cfg.attacks)
    n_targets = min(cfg.apgd_targets, info.num_classes - 1)
    notes = []
    if abs(config.attack.epsilon - attack.epsilon) > 1e-9:
        notes.append(f"the model was trained with epsilon {config.attack.epsilon:g} and is evaluated "
                     f"at epsilon {attack.epsilon:g}")
    if "adaptive" in cfg.attacks and method != "nfi":
        notes.append("adaptive attacks skipped: a TRADES model has no routing switch")
    if any(p.family == "apgd_dlr" for p in planned) and info.num_classes < 3:
        notes.append(f"targeted APGD-DLR skipped: it needs >= 3 classes. Received: {info.num_classes}")
        planned = [p for p in planned if p.family != "apgd_dlr"]

    images, labels = data.load_arrays(data_cfg, "test", cfg.eval_examples, cfg.download)
    x_all = images.astype(np.float32) / 255.0
    pgd_fns, apgd = _build_attacks(planned, classifier, info, cfg, attack, cw_attack)
    keys = {p.key for p in planned}
    recorder = _Recorder(classifier, rows, method == "nfi",
                         next((k for k in ("pgd@tradeoff", "cw@tradeoff", "apgd_ce@tradeoff")
                               if k in keys), None))
    units = sum(n_targets if p.family == "apgd_dlr" else 1 for p in planned) + 1
    num_batches = -(-len(labels) // cfg.batch_size)
    bar = keras.utils.Progbar(num_batches * units, verbose=cfg.verbose, unit_name="attack")

    for b in range(num_batches):
        x = x_all[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        y = labels[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        clean = recorder.record(wc.CLEAN, x, x, y)
        bar.add(1)
        for p in planned:
            if p.family in attacks_pgd.PGD_FAMILIES:
                x_adv = pgd_fns[p.key](tf.constant(x), tf.constant(y), _pgd_seed(seed, p.key, b))
                recorder.record(p.key, x, x_adv.numpy(), y)
            elif p.family == "apgd_ce":
                recorder.record(p.key, x, apgd[p.target].ce(x, y, _numpy_seed(seed, p.key, b)), y)
            else:  # apgd_dlr: one targeted run per target class, as AutoAttack's APGD-T
                targets = autoattack.top_other_classes(clean[p.target], y, n_targets)
                for j in range(n_targets):
                    key = f"{p.key}#{j + 1}"
                    x_adv = apgd[p.target].dlr_targeted(x, targets[:, j], _numpy_seed(seed, key, b))
                    recorder.record(key, x, x_adv, y)
                    bar.add(1)
                continue
            bar.add(1)

    correct, margins = recorder.arrays()
    worst = {row: wc.all_correct(correct[row]) for row in rows}
    families = [f for f in attacks_adaptive.STANDARD_FAMILIES if any(p.family == f for p in planned)]
    result = {
        "model_dir": os.path.abspath(cfg.model_dir),
        "dataset": info.name,
        "method": method,
        "examples": int(len(labels)),
        "seed": seed,
        "rows": list(rows),
        "columns": [wc.CLEAN] + families + ["worst_case"],
        "table": _table(rows, families, correct, worst),
        "settings": {
            "epsilon": attack.epsilon, "pgd": {"step_size": attack.step_size, "steps": attack.num_steps,
                                              "random_start": "uniform", "loss": "cross-entropy"},
            "cw": {"step_size": cw_attack.step_size, "steps": cw_attack.num_steps,
                   "confidence": cfg.cw_confidence},
            "apgd": {"steps": cfg.apgd_steps, "restarts": cfg.apgd_restarts,
                     "dlr_targets": n_targets, "initial_step": 2 * attack.epsilon,
                     "implementation": "adversarial-robustness-toolbox AutoProjectedGradientDescent"},
            "switch_temperature": cfg.switch_temperature,
            "attacks": list(cfg.attacks),
            "batch_size": cfg.batch_size,
        },
        "attack_keys": sorted(correct[rows[0]]),
        "accuracy_by_attack": {row: {k: float(v.mean()) for k, v in sorted(correct[row].items())}
                               for row in rows},
        "checks": {"max_linf": recorder.max_linf, "pixel_range": recorder.pixel_range},
        "notes": notes,
    }
    if method == "nfi":
        result["routed_adaptive"] = _routed_summary(result["accuracy_by_attack"]["routed"],
                                                    result["table"]["routed"]["worst_case"])
        result["route_stats"] = _route_stats(recorder.routes(), correct["routed"], margins["routed"])
    if recorder.overlap_key is not None:
        result["feature_overlap"] = _feature_overlap(recorder, labels, classifier, info, cfg, method)
    result["seconds"] = round(time.time() - started, 1)
    report.write(cfg.model_dir, result)
    log(report.text_table(result))
    return EvalResult(result, labels, correct, worst, recorder.max_linf, recorder.pixel_range)


def _numpy_seed(seed: int, key: str, batch: int) -> tuple[int, int, int]:
    return seed, zlib.crc32(key.encode()), batch


def _build_attacks(planned, classifier, info, cfg: EvalConfig, attack: AttackConfig,
                   cw_attack: AttackConfig) -> tuple[dict, dict]:
    """Compiled PGD-family attacks by key, and one APGD wrapper per attacked output."""
    pgd_fns, apgd = {}, {}
    t = cfg.switch_temperature
    for p in planned:
        if p.family in attacks_pgd.PGD_FAMILIES:
            pgd_fns[p.key] = attacks_pgd.make_pgd_attack(
                attacks_pgd.logits_fn(classifier, p.target, p.switch_mode, t),
                attacks_pgd.loss_for(p.family, cfg.cw_confidence),
                cw_attack if p.family == "cw" else attack)
        elif p.target not in apgd:
            apgd[p.target] = autoattack.Apgd(
                attacks_pgd.logits_fn(classifier, p.target, "straight_through", t),
                info.image_shape, info.num_classes, attack.epsilon, cfg.apgd_steps,
                cfg.apgd_restarts, cfg.batch_size)
    return pgd_fns, apgd


class _Recorder:
    """Scores every input on every output and keeps what the summaries need."""

    def __init__(self, classifier, rows, routed: bool, overlap_key: str | None):
        self._predict = tf.function(lambda z: classifier(z, training=False), reduce_retracing=True)
        self.rows, self.routed, self.overlap_key = rows, routed, overlap_key
        self.scores = {row: wc.Scores() for row in rows}
        self.route_log: dict[str, list[np.ndarray]] = {}
        self.max_linf: dict[str, float] = {}
        self.pixel_range: dict[str, tuple[float, float]] = {}
        self.clean_features, self.adv_features, self.adv_predictions = [], [], []

    def record(self, key: str, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray) -> dict:
        out = {k: v.numpy() for k, v in self._predict(tf.constant(x_adv)).items()}
        for row in self.rows:
            self.scores[row].add(key, out[row], y)
        if self.routed:
            self.route_log.setdefault(key, []).append(out["route"])
        if key == wc.CLEAN:
            self.clean_features.append(out["feature"])
            return out
        family_key = key.split("#")[0]  # the targets of one targeted attack share a check
        linf = float(np.max(np.abs(x_adv - x)))
        self.max_linf[family_key] = max(self.max_linf.get(family_key, 0.0), linf)
        lo, hi = self.pixel_range.get(family_key, (1.0, 0.0))
        self.pixel_range[family_key] = (min(lo, float(x_adv.min())), max(hi, float(x_adv.max())))
        if key == self.overlap_key:
            self.adv_features.append(out["feature"])
            self.adv_predictions.append(np.argmax(out["tradeoff"], axis=1))
        return out

    def arrays(self) -> tuple[dict, dict]:
        correct, margins = {}, {}
        for row in self.rows:
            correct[row], margins[row] = self.scores[row].arrays()
        return correct, margins

    def routes(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.route_log.items()}


def _table(rows, families, correct, worst) -> dict:
    """{row: {column: accuracy}}; a targeted attack's column is the worst case over its targets."""
    table = {}
    for row in rows:
        table[row] = {wc.CLEAN: float(correct[row][wc.CLEAN].mean())}
        for family in families:
            keys = wc.keys_of_column(correct[row], family, row)
            table[row][family] = float(wc.all_correct({k: correct[row][k] for k in keys}).mean())
        table[row]["worst_case"] = float(worst[row].mean())
    return table


def _route_stats(routes: dict, correct: dict, margins: dict) -> dict:
    """Routes on clean inputs and on each example's worst adversarial input (lowest margin)."""
    keys, idx = wc.worst_inputs(margins)
    cols = np.arange(len(idx))
    chosen_routes = np.stack([routes[k] for k in keys])[idx, cols]
    chosen_correct = np.stack([correct[k] for k in keys])[idx, cols]
    return {
        "clean": routes_lib.route_stats(routes[wc.CLEAN], correct[wc.CLEAN]),
        "worst_case_adversarial": routes_lib.route_stats(chosen_routes, chosen_correct),
        "share_by_attack": {k: {name: float(np.mean(routes[k] == i)) for i, name in enumerate(ROUTE_NAMES)}
                            for k in sorted(routes)},
    }


def _feature_overlap(recorder: _Recorder, labels, classifier, info, cfg: EvalConfig, method) -> dict:
    analysis = feature_overlap.analyse(
        np.concatenate(recorder.clean_features), labels, np.concatenate(recorder.adv_features),
        np.concatenate(recorder.adv_predictions), classifier.get_layer("heads").tradeoff_kernel.numpy(),
        cfg.overlap_top_k, info.class_names)
    analysis["attack"] = recorder.overlap_key
    feature_overlap.save(analysis, os.path.join(cfg.model_dir, OVERLAP_JSON),
                         os.path.join(cfg.model_dir, OVERLAP_PNG),
                         f"{info.name} {method}: top-{analysis['k']} feature dims shared "
                         f"(attack {recorder.overlap_key})")
    return {"attack": recorder.overlap_key, "k": analysis["k"], "summary": analysis["summary"],
            "json": OVERLAP_JSON, "png": OVERLAP_PNG}


def _routed_summary(acc: dict[str, float], worst: float) -> dict:
    """The routed model's accuracy under each adaptive attack, and the naive-vs-adaptive gap."""
    named = {
        "naive_hard_switch_pgd": "pgd_naive@routed",
        "straight_through_pgd": "pgd@routed",
        "straight_through_cw": "cw@routed",
        "soft_switch_pgd": "pgd_soft@routed",
        "transfer_pgd_from_tradeoff": "pgd@tradeoff",
        "transfer_pgd_from_benign": "pgd@benign",
        "transfer_pgd_from_adversarial": "pgd@adversarial",
    }
    out = {name: acc.get(key) for name, key in named.items()}
    out["worst_case"] = worst
    naive = out["naive_hard_switch_pgd"]
    out["gap_naive_minus_worst_case"] = None if naive is None else naive - worst
    return out
