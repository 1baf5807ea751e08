"""`evaluate_model(EvalConfig)`: plan -> run -> report.

- plan (`_setup`): load the model dir, resolve budgets, list the planned attacks (plan.py),
  build each registered attack once (suite/) and each planned key's target (suite/nfi_targets.py).
- run (`_run`): per batch, the clean outputs, then every planned attack makes x'; every x' is
  scored on every output (and on the exported ONNX model with --onnx), so transfers cost only a
  forward pass. Attacks of the AutoAttack suite run only on the points that the suite so far
  left robust on their output, as AutoAttack does.
- report (`_report`): per-example worst cases (worst_case.py), the routed model's breakdown,
  route statistics, Figure 1 (right), as an EvalReport (eval_report.py); eval.json, eval.md and
  eval.npz (records.py).

Determinism: every attack's random draws are keyed by (seed, attack key, batch index).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable

import numpy as np

from nfi_tf import data, model_io, outputs
from nfi_tf.attacks.seeds import int_seed
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.config import AttackConfig, make_config
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import feature_overlap, plan, records, report, suite
from nfi_tf.evaluation import routes as routes_lib
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.config import EvalConfig, validate
from nfi_tf.evaluation.eval_report import EvalReport
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.subject import Subject, compiled_score, file_fingerprint
from nfi_tf.evaluation.suite import apgd_t, nfi_targets, registry, square
from nfi_tf.evaluation.suite.budgets import Budgets
from nfi_tf.evaluation.suite.target import AttackTarget
from nfi_tf.outputs import ROUTE_NAMES
from nfi_tf.progress import progress_bar

OVERLAP_JSON = "feature_overlap.json"
OVERLAP_PNG = "feature_overlap.png"
ONNX_ROW = outputs.ROUTED_ONNX
ONNX_SQUARE_KEY = AttackKey(square.SPEC.name, ONNX_ROW)
ONNX_SQUARE = str(ONNX_SQUARE_KEY)
ONNX_SQUARE_RUN = "square (ONNX Runtime)"  # its name in attacks_run
# Figure 1 (right) reads the features under the first of these attacks that ran.
OVERLAP_KEYS = tuple(AttackKey(f, outputs.TRADEOFF) for f in ("pgd", "cw", "apgd_ce"))


@dataclasses.dataclass
class EvalResult:
    report: EvalReport  # what eval.json holds
    labels: np.ndarray
    correct: dict[str, dict[str, np.ndarray]]  # row -> attack key text -> [N] bool
    worst: dict[str, np.ndarray]  # row -> [N] bool, the per-example worst case
    max_linf: dict[str, float]  # attack key text -> largest |x' - x|_inf seen
    pixel_range: dict[str, tuple[float, float]]  # attack key text -> (min, max) of x'


@dataclasses.dataclass
class Setup:
    cfg: EvalConfig
    subject: Subject
    planned: list[plan.PlannedAttack]
    attacks: dict[str, object]  # family -> its built attack (registry)
    targets: dict[AttackKey, AttackTarget]
    budgets: Budgets
    threat: ThreatModel
    seed: int
    x: np.ndarray
    labels: np.ndarray
    notes: list[str]
    onnx: object | None
    onnx_square: object | None


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


def report_dir(cfg: EvalConfig) -> str:
    """Where an evaluation of a model dir writes its reports: the model dir itself, or its
    `validation/` subdirectory for --split=validation (the test report stays untouched)."""
    return os.path.join(cfg.model_dir, "validation") if cfg.split == "validation" else cfg.model_dir


def evaluate_model(cfg: EvalConfig, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate the model in `cfg.model_dir`; writes eval.json, eval.md, eval.npz and Figure 1."""
    started = time.time()
    with quiet_retracing():
        setup = _setup(validate(cfg))
    return run_setup(setup, started, log)


def run_setup(setup: Setup, started: float, log: Callable[[str], None] = print) -> EvalResult:
    """Run a planned evaluation and write its reports (into the subject's out_dir, if any)."""
    cfg = setup.cfg
    with quiet_retracing():
        recorder = _run(setup)
        result = _report(setup, recorder)
    result["report"].seconds = round(time.time() - started, 1)
    out_dir = setup.subject.out_dir
    if out_dir:
        report.write(out_dir, result["report"])
        records.save(os.path.join(out_dir, report.EVAL_NPZ), result["meta"], setup.labels,
                     result["correct"], result["margins"],
                     recorder.worst_images(result["margins"]) if cfg.save_adversarial else None)
    log(report.text_table(result["report"]))
    return EvalResult(result["report"], setup.labels, result["correct"], result["worst"],
                      recorder.max_linf, recorder.pixel_range)


# === plan ===


def _attack_settings(cfg: EvalConfig, base: AttackConfig) -> AttackConfig:
    return AttackConfig(
        epsilon=float(cfg.epsilon if cfg.epsilon is not None else base.epsilon),
        step_size=float(cfg.step_size if cfg.step_size is not None else base.step_size),
        num_steps=int(cfg.pgd_steps if cfg.pgd_steps is not None else base.num_steps))


def _setup(cfg: EvalConfig) -> Setup:
    trained = model_io.load_trained(cfg.model_dir, download=cfg.download)
    config, info = trained.config, trained.info
    data_cfg = config.data
    if cfg.data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=cfg.data_dir)
    # TRADES' evaluation settings for the dataset, not the model's per-epoch check (which a
    # quick training run may have shortened); flags override either.
    pgd = _attack_settings(cfg, make_config(config.data.dataset).eval_attack)
    budgets = Budgets.of(cfg, pgd, info.num_classes)
    threat = ThreatModel(cfg.norm, pgd.epsilon)
    method = config.model.method
    notes = []
    if abs(config.attack.epsilon - pgd.epsilon) > 1e-9:
        notes.append(f"the model was trained with epsilon {config.attack.epsilon:g} and is evaluated "
                     f"at epsilon {pgd.epsilon:g}")
    if "route_aware" in cfg.attacks and method != "nfi":
        notes.append("route-aware attacks skipped: a TRADES model has no routing switch")
    planned = plan.plan(method, cfg)
    notes += skipped_for_norm(cfg)
    if info.num_classes < apgd_t.MIN_CLASSES and any(p.family == apgd_t.SPEC.name for p in planned):
        notes.append(f"APGD-T skipped: its targeted DLR loss needs >= {apgd_t.MIN_CLASSES} classes. "
                     f"Received: {info.num_classes}")
        planned = [p for p in planned if p.family != apgd_t.SPEC.name]
    out_dir = report_dir(cfg)
    if cfg.split == "validation":
        if not data_cfg.validation_examples:
            raise NfiError(f"--split=validation needs a model trained with --validation_examples > 0; "
                           f"{cfg.model_dir} held no images out of its train split")
        spec_ = data.validation_split(data_cfg, cfg.download)
        n = data_cfg.validation_examples if cfg.eval_examples is None else min(
            cfg.eval_examples, data_cfg.validation_examples)
        images, labels = data.load_arrays(data_cfg, spec_, None, cfg.download)
        images, labels = images[:n], labels[:n]
        os.makedirs(out_dir, exist_ok=True)
        notes.append(f"evaluated on {n} validation images (held out of the train split: {spec_}), "
                     f"not on test images")
    else:
        images, labels = data.load_arrays(data_cfg, "test", cfg.eval_examples, cfg.download)
    families = list(dict.fromkeys(p.family for p in planned))
    attacks = {f: suite.get(f).build(budgets, threat) for f in families}
    targets = {p.key: nfi_targets.target_for(trained.classifier, p.key) for p in planned}
    subject = Subject(method=method, rows=plan.rows_for(method), classifier=trained.classifier,
                      score=compiled_score(trained.classifier), dataset=info.name,
                      num_classes=info.num_classes, class_names=info.class_names,
                      fingerprint=file_fingerprint(os.path.join(cfg.model_dir, "model.keras")),
                      out_dir=out_dir,
                      heads_kernel=lambda: trained.classifier.get_layer(
                          outputs.HEADS_LAYER).tradeoff_kernel.numpy())
    onnx = onnx_square = None
    if cfg.onnx:
        from nfi_tf.evaluation.onnx_target import OnnxQuery

        onnx = OnnxQuery(cfg.onnx, cfg.batch_size)
        onnx_square = square.SquareAttack(budgets, threat).on_query(onnx)
    seed = int(cfg.seed if cfg.seed is not None else config.train.seed)
    return Setup(cfg, subject, planned, attacks, targets, budgets, threat, seed,
                  data.uint8_to_float(images), labels, notes, onnx, onnx_square)


def skipped_for_norm(cfg: EvalConfig) -> list[str]:
    """A note per requested attack that has no version for the threat model."""
    asked = set(cfg.attacks) | (set(suite.autoattack()) if suite.AUTOATTACK in cfg.attacks else set())
    missing = [s.title for s in suite.specs() if s.option_name in asked and cfg.norm not in s.norms]
    if not missing:
        return []
    return [f"{', '.join(missing).replace('-{pgd_steps}', '')} skipped: no {cfg.norm.upper()} version in "
            "nfi-tf yet"]


# === run ===


def _run(s: Setup) -> _Recorder:
    cfg = s.cfg
    keys = {p.key for p in s.planned}
    overlap = next((k for k in OVERLAP_KEYS if k in keys), None)
    recorder = _Recorder(s.subject.score, s.subject.rows, s.subject.method == "nfi",
                         overlap and str(overlap), s.onnx, keep_inputs=cfg.save_adversarial)
    units = len(s.planned) + 1 + (1 if s.onnx else 0)
    num_batches = -(-len(s.labels) // cfg.batch_size)
    bar = progress_bar(num_batches * units, cfg.verbose, "evaluate", unit_name="attack")
    for b in range(num_batches):
        x = s.x[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        y = s.labels[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        _, batch_correct = recorder.record(wc.CLEAN, x, x, y)
        bar.add(1)
        for p in s.planned:
            started = time.perf_counter()
            name = str(p.key)
            todo = np.ones(len(y), bool)
            if cfg.cascade:  # the whole worst case: only what every input so far left robust
                todo = wc.all_correct(batch_correct[p.target])
            elif p.suite:  # AutoAttack: only the points the suite so far left robust on this output
                done = [str(q.key) for q in s.planned if q.suite and q.target == p.target
                        and str(q.key) in batch_correct[p.target]]
                todo = wc.all_correct({k: batch_correct[p.target][k] for k in [wc.CLEAN] + done})
            x_adv = x.copy()
            if todo.any():
                idx = np.flatnonzero(todo)
                x_adv[idx] = s.attacks[p.family].run(x[idx], y[idx], int_seed(s.seed, name, b),
                                                     s.targets[p.key])
            _, new = recorder.record(name, x, x_adv, y)
            for row, v in new.items():
                batch_correct[row][name] = v
            # Wall time per attack (attacking + scoring), so a user can see where an evaluation's
            # time goes and budget the next one (suite attacks only run on what is still robust).
            recorder.seconds[name] = recorder.seconds.get(name, 0.0) + time.perf_counter() - started
            bar.add(1)
        if s.onnx:
            x_adv = s.onnx_square.run(x, y, int_seed(s.seed, ONNX_SQUARE, b))
            recorder.record(ONNX_SQUARE, x, x_adv, y)
            bar.add(1)
    return recorder


class _Recorder:
    """Scores every input on every output (and the ONNX model) and keeps what the report needs."""

    def __init__(self, score, rows, routed: bool, overlap_key: str | None, onnx=None,
                 keep_inputs: bool = False):
        self._score = score
        self.rows, self.routed, self.overlap_key, self.onnx = rows, routed, overlap_key, onnx
        self.all_rows = tuple(rows) + ((ONNX_ROW,) if onnx is not None else ())
        self.scores = {row: wc.Scores() for row in self.all_rows}
        self.route_log: dict[str, list[np.ndarray]] = {}
        # Every adversarial batch is kept only for --save_adversarial: on a full test split with
        # dozens of attacks it would otherwise hold gigabytes.
        self.keep_inputs = keep_inputs
        self.inputs: dict[str, list[np.ndarray]] = {}
        self.max_linf: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.pixel_range: dict[str, tuple[float, float]] = {}
        self.clean_features, self.adv_features, self.adv_predictions = [], [], []

    def record(self, key: str, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray):
        """Score x_adv on every output; returns (outputs, {row: [B] correct})."""
        out = self._score(x_adv)
        if self.onnx is not None:
            out[ONNX_ROW] = self.onnx(x_adv)
        correct = {}
        for row in self.all_rows:
            correct[row] = self.scores[row].add(key, out[row], y)
        if self.routed:
            self.route_log.setdefault(key, []).append(out[outputs.ROUTE])
        if self.keep_inputs:
            self.inputs.setdefault(key, []).append(x_adv)
        if key == wc.CLEAN:
            if self.overlap_key is not None:
                self.clean_features.append(out[outputs.FEATURE])
            return out, {row: {wc.CLEAN: v} for row, v in correct.items()}
        linf = float(np.max(np.abs(x_adv - x)))
        self.max_linf[key] = max(self.max_linf.get(key, 0.0), linf)
        lo, hi = self.pixel_range.get(key, (1.0, 0.0))
        self.pixel_range[key] = (min(lo, float(x_adv.min())), max(hi, float(x_adv.max())))
        if key == self.overlap_key:
            self.adv_features.append(out[outputs.FEATURE])
            self.adv_predictions.append(np.argmax(out[outputs.TRADEOFF], axis=1))
        return out, correct

    def arrays(self) -> tuple[dict, dict]:
        correct, margins = {}, {}
        for row in self.all_rows:
            correct[row], margins[row] = self.scores[row].arrays()
        return correct, margins

    def routes(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.route_log.items()}

    def worst_images(self, margins: dict) -> dict[str, np.ndarray]:
        """Per output, each example's lowest-margin input (what --save_adversarial keeps)."""
        inputs = {k: np.concatenate(v) for k, v in self.inputs.items()}
        out = {}
        for row in self.all_rows:
            keys, idx = wc.worst_inputs(margins[row])
            stacked = np.stack([inputs[k] for k in keys])
            out[row] = stacked[idx, np.arange(len(idx))]
        return out


# === report ===


def _columns(s: Setup) -> list[str]:
    if s.cfg.cascade:  # a per-attack column would count the points earlier attacks skipped for it
        return [wc.CLEAN, "worst_case"]
    fams = [spec.option_name for spec in suite.specs()
            if not spec.routed_only and any(p.family == spec.name and not p.suite for p in s.planned)]
    if any(p.suite for p in s.planned):
        fams.append(suite.AUTOATTACK)
    fams += [spec.option_name for spec in suite.specs()
             if spec.routed_only and any(p.family == spec.name for p in s.planned)]
    return [wc.CLEAN] + fams + ["worst_case"]


def _settings(s: Setup) -> dict:
    """Each attack's settings entry as its registry spec reports it, the budgets below
    AutoAttack's standard version, and what the run covered."""
    cfg, b = s.cfg, s.budgets
    out = {"epsilon": s.threat.epsilon, "norm": s.threat.norm}
    for spec in suite.specs():
        out.setdefault(spec.entry, spec.settings(b, s.threat))
    ran = {p.family for p in s.planned} | ({square.SPEC.name} if s.onnx else set())
    out.update({
        "worst_case_mode": "cascade" if cfg.cascade else "columns",
        "autoattack_deviations": registry.deviations(ran, b.values, b.num_classes),
        "attacks": list(cfg.attacks),
        "attack_outputs": list(cfg.attack_outputs) if cfg.attack_outputs else list(s.subject.rows),
        "batch_size": cfg.batch_size,
        "onnx": cfg.onnx,
        "split": getattr(cfg, "split", "test"),
    })
    return out


def _report(s: Setup, recorder: _Recorder) -> dict:
    cfg = s.cfg
    correct, margins = recorder.arrays()
    worst = {row: wc.all_correct(correct[row]) for row in recorder.all_rows}
    columns = _columns(s)
    table = {}
    for row in recorder.all_rows:
        table[row] = {wc.CLEAN: float(correct[row][wc.CLEAN].mean())}
        for column in columns[1:-1]:
            attacked = outputs.ROUTED if row == ONNX_ROW else row
            cols = [str(k) for k in plan.column_keys(s.planned, column, attacked)]
            if column == suite.AUTOATTACK and cols:
                cols = [wc.CLEAN] + cols
            table[row][column] = float(wc.all_correct({k: correct[row][k] for k in cols}).mean()) \
                if cols else None
        table[row]["worst_case"] = float(worst[row].mean())
    subject = s.subject
    by_text = {str(p.key): p.key for p in s.planned}
    typed = lambda name: by_text.get(name, ONNX_SQUARE_KEY if name == ONNX_SQUARE else name)  # noqa: E731
    result = EvalReport(
        model_dir=os.path.abspath(subject.out_dir) if subject.out_dir else "",
        dataset=subject.dataset,
        method=subject.method,
        examples=int(len(s.labels)),
        seed=s.seed,
        rows=list(recorder.all_rows),
        columns=columns,
        table=table,
        attacks_run=list(dict.fromkeys(
            [p.family if not p.suite else f"{suite.AUTOATTACK}:{p.family}" for p in s.planned]
            + ([ONNX_SQUARE_RUN] if s.onnx else []))),
        suite_keys=sorted((p.key for p in s.planned if p.suite), key=str),
        settings=_settings(s),
        attack_keys=[typed(k) for k in sorted(correct[subject.rows[0]])],
        accuracy_by_attack={row: {typed(k): float(v.mean()) for k, v in sorted(correct[row].items())}
                            for row in recorder.all_rows},
        checks={"max_linf": dict(recorder.max_linf),
                "pixel_range": {k: list(v) for k, v in recorder.pixel_range.items()}},
        seconds_by_attack={typed(k): round(v, 2) for k, v in recorder.seconds.items()},
        notes=s.notes,
        records=report.EVAL_NPZ,
    )
    if s.cfg.cascade:
        result.cascade_cumulative = _cascade_cumulative(correct, s)
    elif result.suite_keys:
        result.autoattack_cumulative = _cumulative(correct, s)
    if s.onnx is not None:
        result.onnx = _onnx_summary(correct, [str(p.key) for p in s.planned])
    if subject.method == "nfi":
        result.routed_adaptive = _routed_summary(correct, table)
        result.route_stats = _route_stats(recorder.routes(), correct[outputs.ROUTED], margins[outputs.ROUTED])
    if recorder.overlap_key is not None:
        result.feature_overlap = _feature_overlap(recorder, s)
    if subject.description:
        result.settings["model"] = subject.description
    # model: the sha256 of the model file, so runs on copies of one model dir still merge and
    # runs on other models do not.
    meta = {"model": subject.fingerprint, "model_dir": result.model_dir, "dataset": subject.dataset,
            "epsilon": s.threat.epsilon,
            "seed": s.seed, "attacks": list(cfg.attacks), "examples": int(len(s.labels))}
    return {"report": result, "correct": correct, "margins": margins, "worst": worst, "meta": meta}


def _onnx_summary(correct: dict, planned_keys: list[str]) -> dict:
    """The exported model: clean, Square through ONNX Runtime, every Keras-made input transferred."""
    row = correct[ONNX_ROW]
    keras_keys = [k for k in planned_keys if k in row]
    return {
        "clean": float(row[wc.CLEAN].mean()),
        "square_onnx": float(row[ONNX_SQUARE].mean()),
        "transfer_of_every_keras_attack": float(wc.all_correct(
            {k: row[k] for k in [wc.CLEAN] + keras_keys}).mean()),
        "worst_case": float(wc.all_correct(row).mean()),
        "keras_routed_worst_case": float(wc.all_correct(correct[outputs.ROUTED]).mean())
        if outputs.ROUTED in correct else None,
    }


def _cascade_cumulative(correct: dict, s: Setup) -> dict:
    """The cascade's robust accuracy after each attack family, in run order, per attacked output
    (every family's inputs count, whichever output they attacked: transfers are part of it)."""
    out = {}
    for row in sorted({p.target for p in s.planned}, key=s.subject.rows.index):
        acc, keys = {}, [wc.CLEAN]
        for family in dict.fromkeys(p.family for p in s.planned):
            keys += [str(p.key) for p in s.planned if p.family == family]
            acc[family] = float(wc.all_correct({k: correct[row][k] for k in keys}).mean())
        out[row] = acc
    return out


def _cumulative(correct: dict, s: Setup) -> dict:
    """AutoAttack's robust accuracy after each attack of the suite, per output."""
    out = {}
    for row in sorted({p.target for p in s.planned if p.suite}, key=s.subject.rows.index):
        acc, keys = {}, [wc.CLEAN]
        for family in suite.autoattack():
            ran = [str(p.key) for p in s.planned if p.suite and p.family == family and p.target == row]
            if not ran:  # skipped (no version for the norm, too few classes, no gradients)
                continue
            keys += ran
            acc[family] = float(wc.all_correct({k: correct[row][k] for k in keys}).mean())
        out[row] = acc
    return out


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


def _feature_overlap(recorder: _Recorder, s: Setup) -> dict:
    cfg, subject = s.cfg, s.subject
    analysis = feature_overlap.analyse(
        np.concatenate(recorder.clean_features), s.labels, np.concatenate(recorder.adv_features),
        np.concatenate(recorder.adv_predictions), subject.heads_kernel(), cfg.overlap_top_k,
        subject.class_names)
    analysis["attack"] = recorder.overlap_key
    summary = {"attack": recorder.overlap_key, "k": analysis["k"], "summary": analysis["summary"]}
    if subject.out_dir is None:  # an in-memory evaluation writes no files
        return summary
    feature_overlap.save(analysis, os.path.join(subject.out_dir, OVERLAP_JSON),
                         os.path.join(subject.out_dir, OVERLAP_PNG),
                         f"{subject.dataset} {subject.method}: top-{analysis['k']} feature dims shared "
                         f"(attack {recorder.overlap_key})")
    return {**summary, "json": OVERLAP_JSON, "png": OVERLAP_PNG}


NAIVE_ROUTED = AttackKey("pgd", outputs.ROUTED, "hard")  # PGD through the hard switch
TRADEOFF_PGD = AttackKey("pgd", outputs.TRADEOFF)


def _routed_summary(correct: dict, table: dict) -> dict:
    """Every attack on the routed model, the naive-vs-worst gap, and the trade-off head's gap
    at the same budget (a head without a switch: how much of the gap is the switch's)."""
    routed = {k: float(v.mean()) for k, v in sorted(correct[outputs.ROUTED].items()) if k != wc.CLEAN}
    naive = routed.get(str(NAIVE_ROUTED))
    worst = table[outputs.ROUTED]["worst_case"]
    head = correct[outputs.TRADEOFF].get(str(TRADEOFF_PGD))
    head_pgd = None if head is None else float(head.mean())
    head_worst = table[outputs.TRADEOFF]["worst_case"]
    return {
        "by_attack": routed,
        "naive_hard_switch_pgd": naive,
        "worst_case": worst,
        "gap_naive_minus_worst_case": None if naive is None else naive - worst,
        "tradeoff_pgd": head_pgd,
        "tradeoff_worst_case": head_worst,
        "tradeoff_gap_pgd_minus_worst_case": None if head_pgd is None else head_pgd - head_worst,
    }


def _report_beside(npz_path: str) -> EvalReport | None:
    """The eval.json written with an eval.npz (a renamed record has none that is surely its own)."""
    if os.path.basename(npz_path) != report.EVAL_NPZ:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(npz_path)), report.EVAL_JSON)
    return EvalReport.load(path) if os.path.exists(path) else None


def merge_evaluations(paths: list[str], out_dir: str, log: Callable[[str], None] = print) -> dict:
    """Merge the eval.npz of several runs on one model into one worst case; writes
    eval_merged.json and eval_merged.md into `out_dir`."""
    from nfi_tf import io_utils

    merged = records.merge(paths)
    # Each run's report, where it sits beside its records (an unknown eval.json version is a
    # one-line error here, not a silent merge): which of its attacks ran AutoAttack's way.
    reports = [_report_beside(p) for p in paths]
    worst = {row: wc.all_correct(merged["correct"][row]) for row in merged["rows"]}
    result = {"merged_from": list(paths), "examples": int(len(merged["labels"])),
              "meta": merged["meta"], "per_run_worst_case": merged["per_run_worst_case"],
              "worst_case": {row: float(v.mean()) for row, v in worst.items()},
              "attack_keys": {row: sorted(merged["correct"][row]) for row in merged["rows"]},
              "runs": [None if r is None else {"eval_json_version": r.version, "seed": r.seed,
                                               "attacks": r.settings.get("attacks"),
                                               "suite_keys": [str(k) for k in r.suite_keys]}
                       for r in reports]}
    io_utils.atomic_write_json(os.path.join(out_dir, report.MERGED_JSON), result)
    io_utils.atomic_write_text(os.path.join(out_dir, report.MERGED_MD),
                               report.merged_markdown(merged, result["worst_case"]))
    log(report.merged_markdown(merged, result["worst_case"]))
    return result
