"""A run's outcomes as an `EvalReport`: the table (per-example worst cases per column), the
cumulative accuracies, the routed model's breakdown, route statistics, Figure 1 (right), the
settings every attack ran with, and the meta record eval.npz keeps."""

from __future__ import annotations

import os

import numpy as np

from nfi_tf import outputs
from nfi_tf.evaluation import feature_overlap, suite
from nfi_tf.evaluation import routes as routes_lib
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.keys import CLEAN, AttackKey
from nfi_tf.evaluation.outcomes import FEATURES, Outcomes
from nfi_tf.evaluation.plan import Plan, column_keys
from nfi_tf.evaluation.report import sections
from nfi_tf.evaluation.report.schema import EVAL_NPZ, EvalReport
from nfi_tf.evaluation.vocab import Column, Switch, WorstCaseMode

ONNX_SQUARE_RUN = "square (ONNX Runtime)"  # its name in attacks_run
OVERLAP_JSON = "feature_overlap.json"
OVERLAP_PNG = "feature_overlap.png"
NAIVE_ROUTED = AttackKey(Column.PGD, outputs.ROUTED, Switch.HARD)  # PGD through the hard switch
TRADEOFF_PGD = AttackKey(Column.PGD, outputs.TRADEOFF)


def _model_attacks(plan: Plan):
    """The planned attacks on the model itself (not Square on the exported file)."""
    return [p for p in plan.planned if not p.every_image]


def columns(plan: Plan) -> list[str]:
    if plan.cfg.cascade:  # a per-attack column would count the points earlier attacks skipped for it
        return [Column.CLEAN, Column.WORST_CASE]
    planned = _model_attacks(plan)
    fams = [spec.option_name for spec in suite.specs()
            if not spec.routed_only and any(p.family == spec.name and not p.suite for p in planned)]
    if any(p.suite for p in planned):
        fams.append(Column.AUTOATTACK)
    fams += [spec.option_name for spec in suite.specs()
             if spec.routed_only and any(p.family == spec.name for p in planned)]
    return [Column.CLEAN] + fams + [Column.WORST_CASE]


def table(plan: Plan, o: Outcomes, cols: list[str]) -> dict[str, dict[str, float | None]]:
    planned, out = _model_attacks(plan), {}
    for row in o.rows:
        correct = o.correct[row]
        out[row] = {Column.CLEAN: float(correct[CLEAN].mean())}
        attacked = outputs.ROUTED if row == outputs.ROUTED_ONNX else row
        for column in cols[1:-1]:
            keys = column_keys(planned, column, attacked)
            if column == Column.AUTOATTACK and keys:
                keys = [CLEAN] + keys
            out[row][column] = float(wc.all_correct({k: correct[k] for k in keys}).mean()) if keys else None
        out[row][Column.WORST_CASE] = float(wc.all_correct(correct).mean())
    return out


def settings(plan: Plan) -> sections.Settings:
    """Each attack's settings entry as its registry spec reports it, the budgets below
    AutoAttack's standard version, and what the run covered."""
    cfg, b, threat = plan.cfg, plan.budgets, plan.threat
    entries = {}
    for spec in suite.specs():
        entries.setdefault(spec.entry, spec.settings(b, threat))
    ran = {p.family for p in plan.planned}
    return sections.Settings(
        epsilon=threat.epsilon, norm=threat.norm, entries=entries,
        worst_case_mode=WorstCaseMode.CASCADE if cfg.cascade else WorstCaseMode.COLUMNS,
        autoattack_deviations=suite.registry.deviations(ran, b.values, b.num_classes),
        attacks=list(cfg.attacks),
        attack_outputs=list(cfg.attack_outputs) if cfg.attack_outputs else list(plan.subject.rows),
        batch_size=cfg.batch_size, onnx=cfg.onnx, split=getattr(cfg, "split", "test"),
        model=plan.subject.description or None)


def _attacks_run(plan: Plan) -> list[str]:
    names = [ONNX_SQUARE_RUN if p.every_image else
             (p.family if not p.suite else f"{Column.AUTOATTACK}:{p.family}") for p in plan.planned]
    return list(dict.fromkeys(names))


def _cumulative(plan: Plan, o: Outcomes, suite_only: bool) -> sections.Cumulative:
    """Robust accuracy after each attack family, in run order, per attacked output: AutoAttack's
    suite (only its own attacks on that output), or the cascade (every family's inputs count,
    whichever output they attacked: transfers are part of it)."""
    planned = [p for p in _model_attacks(plan) if p.suite or not suite_only]
    out = {}
    for row in sorted({p.target for p in planned}, key=plan.subject.rows.index):
        acc, keys = {}, [CLEAN]
        families = suite.autoattack() if suite_only else dict.fromkeys(p.family for p in planned)
        for family in families:
            ran = [p.key for p in planned if p.family == family and (p.target == row or not suite_only)]
            if not ran:  # skipped (no version for the norm, too few classes, no gradients)
                continue
            keys += ran
            acc[family] = float(wc.all_correct({k: o.correct[row][k] for k in keys}).mean())
        out[row] = acc
    return out


def _onnx_summary(plan: Plan, o: Outcomes) -> sections.OnnxSummary:
    """The exported model: clean, Square through ONNX Runtime, every Keras-made input transferred."""
    row = o.correct[outputs.ROUTED_ONNX]
    keras_keys = [CLEAN] + [p.key for p in _model_attacks(plan)]
    return sections.OnnxSummary(
        clean=float(row[CLEAN].mean()), square_onnx=float(row[plan.exported_square.key].mean()),
        transfer_of_every_keras_attack=float(wc.all_correct({k: row[k] for k in keras_keys}).mean()),
        worst_case=float(wc.all_correct(row).mean()),
        keras_routed_worst_case=float(wc.all_correct(o.correct[outputs.ROUTED]).mean())
        if outputs.ROUTED in o.correct else None)


def _route_stats(o: Outcomes) -> sections.RouteStats:
    """Routes on clean inputs and on each example's worst adversarial input (lowest margin)."""
    correct, routes = o.correct[outputs.ROUTED], o.routes
    keys, idx = wc.worst_inputs(o.margins[outputs.ROUTED])
    cols = np.arange(len(idx))
    chosen_routes = np.stack([routes[k] for k in keys])[idx, cols]
    chosen_correct = np.stack([correct[k] for k in keys])[idx, cols]
    shares = lambda r, c: {name: sections.RouteShare(**v)  # noqa: E731
                           for name, v in routes_lib.route_stats(r, c).items()}
    by_attack = {k: {name: float(np.mean(routes[k] == i)) for i, name in enumerate(outputs.ROUTE_NAMES)}
                 for k in sorted(routes)}
    return sections.RouteStats(clean=shares(routes[CLEAN], correct[CLEAN]),
                               worst_case_adversarial=shares(chosen_routes, chosen_correct),
                               share_by_attack=by_attack)


def _routed_summary(o: Outcomes, tab: dict) -> sections.RoutedSummary:
    """Every attack on the routed model, the naive-vs-worst gap, and the trade-off head's gap
    at the same budget (a head without a switch: how much of the gap is the switch's)."""
    routed = {k: float(v.mean()) for k, v in sorted(o.correct[outputs.ROUTED].items()) if not k.is_clean}
    naive = routed.get(NAIVE_ROUTED)
    worst = tab[outputs.ROUTED][Column.WORST_CASE]
    head = o.correct[outputs.TRADEOFF].get(TRADEOFF_PGD)
    head_pgd = None if head is None else float(head.mean())
    head_worst = tab[outputs.TRADEOFF][Column.WORST_CASE]
    return sections.RoutedSummary(
        by_attack=routed, naive_hard_switch_pgd=naive, worst_case=worst,
        gap_naive_minus_worst_case=None if naive is None else naive - worst,
        tradeoff_pgd=head_pgd, tradeoff_worst_case=head_worst,
        tradeoff_gap_pgd_minus_worst_case=None if head_pgd is None else head_pgd - head_worst)


def _feature_overlap(plan: Plan, o: Outcomes) -> sections.OverlapSummary:
    subject, f = plan.subject, o.features
    analysis = feature_overlap.analyse(
        *(np.concatenate(f[name]) for name in FEATURES[:1]), o.labels,
        *(np.concatenate(f[name]) for name in FEATURES[1:]),
        subject.heads_kernel(), plan.cfg.overlap_top_k, subject.class_names)
    analysis["attack"] = str(o.overlap_key)
    summary = sections.OverlapSummary(o.overlap_key, analysis["k"], analysis["summary"])
    if subject.out_dir is None:  # an in-memory evaluation writes no files
        return summary
    feature_overlap.save(analysis, os.path.join(subject.out_dir, OVERLAP_JSON),
                         os.path.join(subject.out_dir, OVERLAP_PNG),
                         f"{subject.dataset} {subject.method}: top-{analysis['k']} feature dims shared "
                         f"(attack {o.overlap_key})")
    summary.json, summary.png = OVERLAP_JSON, OVERLAP_PNG
    return summary


def report(plan: Plan, o: Outcomes) -> EvalReport:
    subject, cols = plan.subject, columns(plan)
    tab = table(plan, o, cols)
    first = o.correct[subject.rows[0]]
    result = EvalReport(
        model_dir=os.path.abspath(subject.out_dir) if subject.out_dir else "", dataset=subject.dataset,
        method=subject.method, examples=int(len(o.labels)), seed=plan.seed, rows=list(o.rows),
        columns=cols, table=tab, attacks_run=_attacks_run(plan),
        suite_keys=sorted(p.key for p in plan.planned if p.suite), settings=settings(plan),
        attack_keys=sorted(first), accuracy_by_attack={
            row: {k: float(v.mean()) for k, v in sorted(o.correct[row].items())} for row in o.rows},
        checks=sections.Checks(dict(o.max_linf), dict(o.pixel_range)),
        seconds_by_attack={k: round(v, 2) for k, v in o.seconds.items()}, notes=plan.notes, records=EVAL_NPZ)
    if plan.cfg.cascade:
        result.cascade_cumulative = _cumulative(plan, o, suite_only=False)
    elif result.suite_keys:
        result.autoattack_cumulative = _cumulative(plan, o, suite_only=True)
    if subject.exported is not None:
        result.onnx = _onnx_summary(plan, o)
    if subject.routed:
        result.routed_adaptive = _routed_summary(o, tab)
        result.route_stats = _route_stats(o)
    if o.overlap_key is not None:
        result.feature_overlap = _feature_overlap(plan, o)
    return result


def meta(plan: Plan, result: EvalReport) -> dict:
    """What eval.npz records of the run (`model`: the sha256 of the model file, so runs on
    copies of one model dir still merge and runs on other models do not)."""
    cfg, subject = plan.cfg, plan.subject
    return {"model": subject.fingerprint, "model_dir": result.model_dir, "dataset": subject.dataset,
            "epsilon": plan.threat.epsilon, "seed": plan.seed, "attacks": list(cfg.attacks),
            "examples": int(len(plan.labels))}
