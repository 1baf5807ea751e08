"""The tables of RESULTS.md, built from the runs `scripts/reproduce.py` kept under results/.

Each run directory holds eval.json (written by `python -m nfi_tf.evaluate`) and run.json (its
training and evaluation time). Verdicts are mechanical so anyone rerunning gets the same words:
a claimed difference counts as reproduced when it has the claimed sign and exceeds two standard
errors of a difference of two accuracies on the test images used (binomial); as not reproduced
when it has the opposite sign beyond that margin; otherwise inconclusive at this scale.
"""

from __future__ import annotations

import json
import math
import os

from nfi_tf import io_utils
from nfi_tf.evaluation.report import md_table

COLUMNS = ("clean", "pgd", "cw", "autoattack", "route_aware", "worst_case")
TITLES = {"clean": "clean", "pgd": "PGD", "cw": "CW-Linf", "autoattack": "AutoAttack",
          "route_aware": "route-aware", "worst_case": "worst case (adaptive)"}
TABLE_FILE = "results_table.md"
VERDICTS_FILE = "verdicts.json"


def load_run(results_dir: str, dataset: str, run: str) -> dict | None:
    path = os.path.join(results_dir, dataset, run, "eval.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        result = json.load(f)
    record_path = os.path.join(results_dir, dataset, run, "run.json")
    if os.path.exists(record_path):
        with open(record_path) as f:
            result["_run"] = json.load(f)
    return result


def _cell(result: dict, row: str, col: str) -> float | None:
    return result.get("table", {}).get(row, {}).get(col)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def compare(claimed_higher: float | None, claimed_lower: float | None, n: int) -> dict:
    """Verdict on the claim `claimed_higher > claimed_lower` (accuracies in [0, 1], n images)."""
    if claimed_higher is None or claimed_lower is None or n <= 0:
        return {"verdict": "not measured"}
    diff = claimed_higher - claimed_lower
    var = sum(p * (1 - p) for p in (claimed_higher, claimed_lower)) / n
    margin = 2 * math.sqrt(max(var, 1e-12))
    verdict = ("reproduced" if diff > margin else "not reproduced" if diff < -margin
               else "inconclusive")
    return {"verdict": verdict, "difference_points": round(100 * diff, 2),
            "two_se_points": round(100 * margin, 2)}


def main_table(dataset: str, runs: dict, paper_table2: dict | None) -> list[str]:
    """Table 2: the routed nfi model against TRADES, every attack column."""
    header = ["model"] + [TITLES[c] for c in COLUMNS] + ["train min"]
    rows = []
    for name, row_key, label in (("trades", "tradeoff", "TRADES (ours, same budget)"),
                                 ("nfi", "routed", "nfi routed (ours)")):
        r = runs.get(name)
        if r is None:
            continue
        minutes = r.get("_run", {}).get("train_seconds")
        rows.append([label] + [_pct(_cell(r, row_key, c)) for c in COLUMNS]
                    + ["—" if minutes is None else f"{minutes / 60:.0f}"])
    if paper_table2:
        for label, (pgd, cw, clean) in paper_table2.items():
            rows.append([f"paper: {label} (WRN-34-10)", f"{clean}", f"{pgd}", f"{cw}", "—", "—", "—", "—"])
    return [f"### {dataset}: Table 2 (routed model vs TRADES), accuracy %", ""] + md_table(header, rows)


def parts_table(dataset: str, runs: dict, paper_table1: dict | None) -> list[str]:
    """Table 1: the robust part alone, the non-robust part alone, the baseline."""
    header = ["part", "clean", "PGD", "worst case"]
    rows = []
    nfi, trades = runs.get("nfi"), runs.get("trades")
    for r, row_key, label in ((nfi, "robust_part", "robust part (nfi)"),
                              (nfi, "nonrobust_part", "non-robust part (nfi)"),
                              (trades, "tradeoff", "baseline (TRADES)")):
        if r is not None:
            rows.append([label] + [_pct(_cell(r, row_key, c)) for c in ("clean", "pgd", "worst_case")])
    if paper_table1:
        for label, (robustness, accuracy) in paper_table1.items():
            rows.append([f"paper: {label}", f"{accuracy}", f"{robustness}", "—"])
    return [f"### {dataset}: Table 1 (each part alone), accuracy %", ""] + md_table(header, rows)


def route_table(dataset: str, runs: dict) -> list[str]:
    r = runs.get("nfi")
    stats = (r or {}).get("route_stats")
    if not stats:
        return []
    routes = list(stats["clean"])
    header = ["inputs"] + [f"{k}: share / accuracy" for k in routes]
    rows = []
    for key, label in (("clean", "clean"), ("worst_case_adversarial", "worst-case adversarial")):
        if key in stats:
            rows.append([label] + [f"{_pct(stats[key][k]['share'])} / {_pct(stats[key][k]['accuracy'])}"
                                   for k in routes])
    return [f"### {dataset}: routes of the nfi model, %", ""] + md_table(header, rows)


def adaptive_table(dataset: str, runs: dict) -> list[str]:
    r = runs.get("nfi")
    summary = (r or {}).get("routed_adaptive")
    if not summary:
        return []
    rows = [[f"`{k}`", _pct(v)] for k, v in sorted(summary.get("by_attack", {}).items())]
    rows.append(["worst case", _pct(summary.get("worst_case"))])
    gap = summary.get("gap_naive_minus_worst_case")
    tail = [] if gap is None else ["", f"Naive PGD through the hard switch overstates the routed "
                                       f"model's robustness by {_pct(gap)} points."]
    return ([f"### {dataset}: the routed model under each attack, accuracy %", ""]
            + md_table(["attack", "routed"], rows) + tail)


def ablation_table(dataset: str, runs: dict) -> list[str]:
    names = [n for n in runs if n.startswith("ablation")]
    if not names:
        return []
    header = ["run", "routed clean", "routed worst case", "trade-off clean", "trade-off PGD",
              "robust part clean / PGD", "non-robust part clean / PGD"]
    rows = []
    for n in names:
        r = runs[n]
        rows.append([n.removeprefix("ablation_").replace("_", " "),
                     _pct(_cell(r, "routed", "clean")), _pct(_cell(r, "routed", "worst_case")),
                     _pct(_cell(r, "tradeoff", "clean")), _pct(_cell(r, "tradeoff", "pgd")),
                     f"{_pct(_cell(r, 'robust_part', 'clean'))} / {_pct(_cell(r, 'robust_part', 'pgd'))}",
                     f"{_pct(_cell(r, 'nonrobust_part', 'clean'))} / "
                     f"{_pct(_cell(r, 'nonrobust_part', 'pgd'))}"])
    return ([f"### {dataset}: ablations (shorter runs, same budget within the set), accuracy %", ""]
            + md_table(header, rows))


def verdicts(runs: dict) -> dict:
    nfi, trades = runs.get("nfi"), runs.get("trades")
    if nfi is None:
        return {}
    n = int(nfi.get("examples", 0))
    out = {
        "table1_robust_part_more_robust": compare(_cell(nfi, "robust_part", "pgd"),
                                                  _cell(nfi, "nonrobust_part", "pgd"), n),
        "table1_robust_part_less_accurate": compare(_cell(nfi, "nonrobust_part", "clean"),
                                                    _cell(nfi, "robust_part", "clean"), n),
    }
    if trades is not None:
        out |= {
            "table2_routed_more_accurate_than_trades": compare(
                _cell(nfi, "routed", "clean"), _cell(trades, "tradeoff", "clean"), n),
            "table2_routed_more_robust_pgd_adaptive": compare(
                _cell(nfi, "routed", "worst_case"), _cell(trades, "tradeoff", "worst_case"), n),
            "table2_routed_pgd_column": compare(_cell(nfi, "routed", "pgd"),
                                                _cell(trades, "tradeoff", "pgd"), n),
            "table2_routed_cw_column": compare(_cell(nfi, "routed", "cw"),
                                               _cell(trades, "tradeoff", "cw"), n),
        }
    return out


def write_tables(results_dir: str, records: list[dict], paper_table1: dict, paper_table2: dict) -> str:
    """Write results_table.md and verdicts.json under results_dir; returns the markdown."""
    by_dataset: dict[str, dict] = {}
    for rec in records:
        r = load_run(results_dir, rec["dataset"], rec["run"])
        if r is not None:
            by_dataset.setdefault(rec["dataset"], {})[rec["run"]] = r
    lines = ["# Reproduction tables (generated by scripts/reproduce.py; do not edit)", ""]
    all_verdicts = {}
    for dataset, runs in by_dataset.items():
        paper = dataset == "cifar10"  # the paper's tables are CIFAR-10 (WRN-34-10)
        for block in (main_table(dataset, runs, paper_table2 if paper else None),
                      parts_table(dataset, runs, paper_table1 if paper else None),
                      adaptive_table(dataset, runs), route_table(dataset, runs),
                      ablation_table(dataset, runs)):
            if block:
                lines += block + [""]
        v = verdicts(runs)
        all_verdicts[dataset] = v
        if v:
            lines += [f"### {dataset}: verdicts (difference vs two standard errors, points)", ""]
            lines += md_table(["claim", "verdict", "difference", "2 SE"],
                         [[k.replace("_", " "), d["verdict"], str(d.get("difference_points", "—")),
                           str(d.get("two_se_points", "—"))] for k, d in v.items()])
            lines.append("")
    text = "\n".join(lines)
    io_utils.atomic_write_text(os.path.join(results_dir, TABLE_FILE), text)
    io_utils.atomic_write_json(os.path.join(results_dir, VERDICTS_FILE), all_verdicts)
    return text
