"""The tables of RESULTS.md, built from the runs the reproduction kept under results/.

Each run directory holds eval.json and eval.npz (written by `python -m nfi_tf.evaluate`), the
training history and run.json (its training and evaluation time). Main runs are repeated over
seeds (`<name>_seed<k>`); a table cell is the mean over the finished seeds (± their standard
deviation when there are several). The verdicts are the claims' (claims.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import numpy as np

from nfi_tf import io_utils
from nfi_tf.evaluation.report import EvalReport, md_table
from nfi_tf.evaluation.vocab import Column
from nfi_tf.experiments import claims
from nfi_tf.experiments.reproduction import (
    CONTROL_RUN,
    GUARD_RUN,
    INDEPENDENT_FILE,
    SYNTHESIS_RUN,
)
from nfi_tf.outputs import NONROBUST_PART, ROBUST_PART, ROUTED, TRADEOFF
from nfi_tf.vocab import Method

COLUMNS = (Column.CLEAN, Column.PGD, Column.CW, Column.AUTOATTACK, Column.ROUTE_AWARE,
           Column.WORST_CASE)
TITLES = {Column.CLEAN: Column.CLEAN.value,  # titled by its name
          Column.PGD: "PGD", Column.CW: "CW-Linf", Column.AUTOATTACK: "AutoAttack (CPU budget)",
          Column.ROUTE_AWARE: "route-aware", Column.WORST_CASE: "worst case"}
TABLE_FILE = "results_table.md"
VERDICTS_FILE = "verdicts.json"
_SEEDED = re.compile(r"^(?P<base>.+)_seed(?P<seed>\d+)$")


@dataclasses.dataclass
class FinishedRun:
    """One run kept under results/: its evaluation report and the small files beside it."""

    dir: str
    report: EvalReport
    run: dict[str, Any] = dataclasses.field(default_factory=dict)  # run.json
    history: list[dict] = dataclasses.field(default_factory=list)  # history.json
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # config.json
    independent: dict[str, Any] | None = None  # independent_attack.json


def split_name(run: str) -> tuple[str, int | None]:
    m = _SEEDED.match(run)
    return (m["base"], int(m["seed"])) if m else (run, None)


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def load_run(results_dir: str, dataset: str, run: str) -> FinishedRun | None:
    d = os.path.join(results_dir, dataset, run)
    if not os.path.exists(os.path.join(d, "eval.json")):
        return None
    found = {}
    for name, attr in (("run.json", "run"), ("history.json", "history"), ("config.json", "config"),
                       (INDEPENDENT_FILE, "independent")):
        if os.path.exists(os.path.join(d, name)):
            found[attr] = _read_json(os.path.join(d, name))
    return FinishedRun(d, EvalReport.load(os.path.join(d, "eval.json")), **found)


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = 100 * float(np.mean(values))
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {100 * float(np.std(values, ddof=1)):.1f}"


def train_seconds(result: FinishedRun) -> float:
    """A run's training time: the sum of its epochs' times when its history has them (true
    across a stop and resume), else the time the reproduction's process measured (which after a
    resume counts only the time since it)."""
    history = result.history or []
    if history and all(h.get("seconds") is not None for h in history):
        return float(sum(h["seconds"] for h in history))
    return float(result.run.get("train_seconds", 0))


def _seeds(runs: dict, base: str) -> list[FinishedRun]:
    """The finished seeds of a main run, in seed order."""
    return [r for _, r in sorted((runs.get(base) or {}).items())]


def main_table(dataset: str, runs: dict, paper_table2: dict | None) -> list[str]:
    """Table 2: the routed nfi model against TRADES, every attack column (mean ± sd over seeds)."""
    header = ["model", "seeds"] + [TITLES[c] for c in COLUMNS] + ["train min"]
    rows = []
    for base, row_key, label in ((Method.TRADES, TRADEOFF, "TRADES (ours, same budget)"),
                                 (CONTROL_RUN, TRADEOFF, "TRADES × nfi's total loss weight 3.1 (control)"),
                                 (Method.NFI, ROUTED, "nfi routed (ours)"),
                                 (Method.NFI, TRADEOFF, "nfi trade-off head alone (ours)"),
                                 (GUARD_RUN, ROUTED, "nfi + route guard, routed (not the paper)")):
        seeds = _seeds(runs, base)
        if not seeds:
            continue
        minutes = [train_seconds(r) / 60 for r in seeds]
        rows.append([label, str(len(seeds))] + [_mean_sd([r.report.cell(row_key, c) for r in seeds])
                                                 for c in COLUMNS] + [f"{np.mean(minutes):.0f}"])
    if paper_table2:
        for label, (pgd, cw, clean) in paper_table2.items():
            rows.append([f"paper: {label} (WRN-34-10)", "—", f"{clean}", f"{pgd}", f"{cw}",
                         "—", "—", "—", "—"])
    return ([f"### {dataset}: Table 2 (routed model vs TRADES), accuracy %, mean ± sd over seeds", ""]
            + md_table(header, rows))


def parts_table(dataset: str, runs: dict, paper_table1: dict | None) -> list[str]:
    """Table 1: the robust part alone, the non-robust part alone, the baseline."""
    cols = (Column.CLEAN, Column.PGD, Column.AUTOATTACK, Column.WORST_CASE)
    header = ["part", "seeds"] + [TITLES[c] for c in cols]
    rows = []
    for base, row_key, label in ((Method.NFI, ROBUST_PART, "robust part (nfi)"),
                                 (Method.NFI, NONROBUST_PART, "non-robust part (nfi)"),
                                 (Method.TRADES, TRADEOFF, "baseline (TRADES)")):
        seeds = _seeds(runs, base)
        if seeds:
            rows.append([label, str(len(seeds))] + [_mean_sd([r.report.cell(row_key, c) for r in seeds])
                                                     for c in cols])
    if paper_table1:
        for label, (robustness, accuracy) in paper_table1.items():
            rows.append([f"paper: {label}", "—", f"{accuracy}", f"{robustness}", "—", "—"])
    return [f"### {dataset}: Table 1 (each part alone), accuracy %", ""] + md_table(header, rows)


# The inputs whose routes route_table shows: (their RouteStats share, the row's title).
_ROUTE_INPUTS = ((lambda stats: stats.clean, Column.CLEAN),
                 (lambda stats: stats.worst_case_adversarial, "worst-case adversarial"))


def route_table(dataset: str, runs: dict) -> list[str]:
    """Which route clean and worst-case adversarial inputs take, nfi and (if run) the guard."""
    models = [(label, [r for r in _seeds(runs, base) if r.report.route_stats])
              for base, label in ((Method.NFI, Method.NFI.title), (GUARD_RUN, "nfi + route guard"))]
    models = [(label, seeds) for label, seeds in models if seeds]
    if not models:
        return []
    routes = list(models[0][1][0].report.route_stats.clean)
    header = ["model", "inputs"] + [f"{k}: share / accuracy" for k in routes]
    rows = []
    for label, seeds in models:
        for inputs, title in _ROUTE_INPUTS:
            shares = [inputs(r.report.route_stats) for r in seeds]
            rows.append([label, title] + [f"{_mean_sd([s[k].share for s in shares])} / "
                                          f"{_mean_sd([s[k].accuracy for s in shares])}" for k in routes])
    return [f"### {dataset}: routes of the routed models, % (mean over seeds)", ""] + md_table(header, rows)


def adaptive_table(dataset: str, runs: dict) -> list[str]:
    """The routed model under each attack, and naive PGD's gap beside the trade-off head's."""
    seeds = [r for r in _seeds(runs, Method.NFI) if r.report.routed_adaptive]
    if not seeds:
        return []
    names = sorted(seeds[0].report.routed_adaptive.by_attack)
    rows = [[f"`{k}`", _mean_sd([r.report.routed_adaptive.by_attack.get(k) for r in seeds])]
            for k in names]
    rows.append(["worst case", _mean_sd([r.report.routed_adaptive.worst_case for r in seeds])])
    lines = ([f"### {dataset}: the routed model under each attack, accuracy % (mean over seeds)", ""]
             + md_table(["attack", ROUTED], rows))
    gaps = [r.report.routed_adaptive.gap_naive_minus_worst_case for r in seeds]
    trade_gaps = [(r.report.cell(TRADEOFF, Column.PGD) - r.report.cell(TRADEOFF, Column.WORST_CASE))
                  if r.report.cell(TRADEOFF, Column.PGD) is not None else None for r in seeds]
    if any(g is not None for g in gaps):
        lines += ["", f"Naive PGD through the hard switch minus the routed worst case: "
                      f"{_mean_sd(gaps)} points; the same gap on the trade-off head (PGD minus its "
                      f"worst case, no switch): {_mean_sd(trade_gaps)} points."]
    return lines


def counterfactual_table(dataset: str, runs: dict) -> list[str]:
    """The counterfactual form each nfi run trained with, and whether its ratio acted."""
    rows = []
    for base in sorted(runs):
        for seed, r in sorted(runs[base].items()):
            loss = r.config.get("loss", {})
            if r.report.method != Method.NFI or not loss:
                continue
            history = r.history or []
            lows = [e["train"].get("cf_denominator_min") for e in history
                    if e.get("train", {}).get("cf_denominator_min") is not None]
            highs = [e["train"].get("cf_denominator_max") for e in history
                     if e.get("train", {}).get("cf_denominator_max") is not None]
            span = f"{min(lows):.3g} – {max(highs):.3g}" if lows and highs else "—"
            name = base if seed is None else f"{base} seed {seed}"
            rows.append([name, loss.get("counterfactual_loss", "—"),
                         f"{loss.get('counterfactual_weight', '—')}",
                         f"{loss.get('counterfactual_warmup_steps', '—')}", span])
    if not rows:
        return []
    return ([f"### {dataset}: the counterfactual loss as trained (denominator range over training)",
             ""] + md_table(["run", "form", "weight", "warm-up steps", "denominator min – max"], rows))


OVERLAP = (("clean_with_true_class", "clean image, own class"),
           ("fooled_with_adversarial_class", "fooled image, adversarial class"),
           ("fooled_with_true_class", "fooled image, true class"),
           ("attacked_with_other_classes", "attacked image, other classes"))


def overlap_table(dataset: str, runs: dict) -> list[str]:
    """Figure 1 (right): top-k feature dims an image shares with each class's clean images."""
    rows = []
    for method in (Method.TRADES, Method.NFI):
        seeds = [r.report.feature_overlap for r in _seeds(runs, method) if r.report.feature_overlap]
        if seeds:
            k = seeds[0].k
            rows.append([method.title, str(len(seeds))] + [
                f"{np.mean([o.summary[key] for o in seeds]):.2f}" for key, _ in OVERLAP])
    if not rows:
        return []
    return ([f"### {dataset}: Figure 1 (right), top-{k} feature dims shared (mean over seeds)", ""]
            + md_table(["model", "seeds"] + [t for _, t in OVERLAP], rows))


def synthesis_table(dataset: str, results_dir: str) -> list[str]:
    """Figure 5: mean target-class probability at the seed and after each synthesis stage."""
    path = os.path.join(results_dir, dataset, SYNTHESIS_RUN, "synthesis", "summary.json")
    if not os.path.exists(path):
        return []
    probs = _read_json(path)["mean_target_prob"]
    stages = (("seed", "seed"), ("stage_one", "after stage 1 (robust part)"),
              ("stage_two", "after stage 2 (non-robust part)"))
    outputs_ = sorted(probs["seed"])
    rows = [[title] + [f"{probs[key][o]:.3f}" for o in outputs_] for key, title in stages]
    return ([f"### {dataset}: two-stage synthesis (nfi seed 0), mean target-class probability", ""]
            + md_table(["images"] + outputs_, rows))


def independent_table(dataset: str, checks: list[dict]) -> list[str]:
    if not checks:
        return []
    rows = [[c["run"], c["output"], str(c["examples"]), _mean_sd([c["reported_worst_case"]]),
             _mean_sd([c["independent_attack"]]), "yes" if c["ok"] else "NO: a bug in our evaluation"]
            for c in checks]
    return ([f"### {dataset}: independent check (scripts/independent_attack.py: CW-margin PGD summed "
             "over the heads, 100 steps, 2 restarts), accuracy %", ""]
            + md_table(["run", "output", "images", "our worst case", "independent attack",
                        "ours at or below it"], rows))


# The ablation table's cells after the run's name: one (output, column) each, or two shown "a / b".
_ABLATION_CELLS = (((ROUTED, Column.CLEAN),), ((ROUTED, Column.WORST_CASE),),
                   ((TRADEOFF, Column.CLEAN),), ((TRADEOFF, Column.WORST_CASE),),
                   ((ROBUST_PART, Column.CLEAN), (ROBUST_PART, Column.PGD)),
                   ((NONROBUST_PART, Column.CLEAN), (NONROBUST_PART, Column.PGD)))


def ablation_table(dataset: str, runs: dict) -> list[str]:
    names = [n for n in runs if n.startswith("ablation")]
    if not names:
        return []
    header = ["run", "routed clean", "routed worst case", "trade-off clean", "trade-off worst case",
              "robust part clean / PGD", "non-robust part clean / PGD"]
    rows = []
    for n in names:
        cell = runs[n][None].report.cell
        rows.append([n.removeprefix("ablation_").replace("_", " ")] + [
            " / ".join(_mean_sd([cell(output, column)]) for output, column in shown)
            for shown in _ABLATION_CELLS])
    # Name the attacks behind "worst case" from the runs themselves (eval.json), not the plan.
    attacks = sorted({a for n in names for a in runs[n][None].report.settings.attacks
                      if a != Column.CLEAN})
    behind = f"; worst case over {', '.join(attacks)}" if attacks else ""
    return ([f"### {dataset}: ablations (one seed, shorter runs, same budget within the set{behind}), "
             "accuracy %", ""] + md_table(header, rows))


def verdict_table(title: str, v: dict) -> list[str]:
    if not v:
        return []
    rows = []
    for d in v.values():
        per_seed = ", ".join(f"{100 * x:+.1f}" for x in d["per_seed_difference"])
        rows.append([d["claim"], d["verdict"], f"{100 * d['difference']:+.1f}", per_seed,
                     f"{d['a_only']} / {d['b_only']}", f"{d['p_value']:.2g}"])
    return [title, ""] + md_table(["claim", "verdict", "pooled difference (points)",
                                   "per seed", "only A / only B right", "McNemar p"], rows)


def group_runs(results_dir: str, records: list[dict]) -> dict[str, dict[str, dict]]:
    """{dataset: {base name: {seed or None: FinishedRun}}} for the finished runs."""
    by_dataset: dict[str, dict] = {}
    for rec in records:
        r = load_run(results_dir, rec["dataset"], rec["run"])
        if r is not None:
            base, seed = split_name(rec["run"])
            by_dataset.setdefault(rec["dataset"], {}).setdefault(base, {})[seed] = r
    return by_dataset


# RESULTS.md carries the generated tables after this line, rewritten by `--stage=tables` (and at
# the end of every full reproduction), so the document cannot drift from results/.
# (The marker's text names the old script, which still runs the reproduction; changing it would
# change every RESULTS.md.)
DOC_MARKER = "<!-- generated: scripts/reproduce.py rewrites everything below this line -->"


def doc_section(table_text: str) -> str:
    """results_table.md as RESULTS.md shows it: without its title, headings one level down."""
    lines = table_text.splitlines()[1:]
    return "\n".join("#" + ln if ln.startswith("### ") else ln for ln in lines).strip() + "\n"


def update_doc(doc_path: str, table_text: str) -> None:
    with open(doc_path) as f:
        doc = f.read()
    if DOC_MARKER not in doc:
        raise ValueError(f"{doc_path} has no line {DOC_MARKER!r} to write the tables after")
    head = doc[:doc.index(DOC_MARKER) + len(DOC_MARKER)]
    io_utils.atomic_write_text(doc_path, head + "\n\n" + doc_section(table_text))


def write_tables(results_dir: str, records: list[dict], paper_table1: dict, paper_table2: dict) -> str:
    """Write results_table.md and verdicts.json under results_dir; returns the markdown."""
    lines = ["# Reproduction tables (generated by scripts/reproduce.py; do not edit)", ""]
    all_verdicts = {}
    for dataset, runs in group_runs(results_dir, records).items():
        paper = dataset == "cifar10"  # the paper's tables are CIFAR-10 (WRN-34-10)
        main, ablation = claims.verdicts(runs), claims.verdicts(runs, claims.ABLATION_CLAIMS)
        guard = claims.verdicts(runs, claims.GUARD_CLAIMS)
        mechanism = claims.verdicts(runs, claims.MECHANISM_CLAIMS)
        checks = claims.independent_checks(runs)
        all_verdicts[dataset] = {"main": main, "mechanism": mechanism, "route_guard": guard,
                                 "ablations": ablation, "independent_check": checks}
        for block in (main_table(dataset, runs, paper_table2 if paper else None),
                      parts_table(dataset, runs, paper_table1 if paper else None),
                      verdict_table(f"### {dataset}: verdicts (McNemar, seeds pooled)", main),
                      verdict_table(f"### {dataset}: where it comes from, not the paper's claims "
                                    "(McNemar, seeds pooled)", mechanism),
                      verdict_table(f"### {dataset}: the route guard, not the paper's method "
                                    "(McNemar, seeds pooled)", guard),
                      adaptive_table(dataset, runs), route_table(dataset, runs),
                      counterfactual_table(dataset, runs), overlap_table(dataset, runs),
                      synthesis_table(dataset, results_dir), ablation_table(dataset, runs),
                      verdict_table(f"### {dataset}: ablation verdicts (McNemar, one seed)", ablation),
                      independent_table(dataset, checks)):
            if block:
                lines += block + [""]
    text = "\n".join(lines)
    io_utils.atomic_write_text(os.path.join(results_dir, TABLE_FILE), text)
    io_utils.atomic_write_json(os.path.join(results_dir, VERDICTS_FILE), all_verdicts)
    return text
