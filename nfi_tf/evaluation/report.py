"""eval.json (everything, machine-readable) and eval.md (the tables), written atomically."""

from __future__ import annotations

import os

from nfi_tf import io_utils

EVAL_JSON = "eval.json"
EVAL_MD = "eval.md"

COLUMN_TITLES = {
    "clean": "clean",
    "pgd": "PGD-{pgd_steps}",
    "cw": "CW-Linf",
    "apgd_ce": "APGD-CE",
    "apgd_dlr": "APGD-T (DLR)",
    "worst_case": "worst case",
}
ROW_TITLES = {
    "routed": "routed (NFI)",
    "tradeoff": "trade-off head",
    "benign": "benign head",
    "adversarial": "adversarial head",
    "robust_part": "robust part alone",
    "nonrobust_part": "non-robust part alone",
}
SUMMARY_TITLES = {
    "naive_hard_switch_pgd": "PGD through the hard switch (naive, not adaptive)",
    "straight_through_pgd": "PGD, straight-through switch",
    "straight_through_cw": "CW-Linf, straight-through switch",
    "soft_switch_pgd": "PGD, soft switch (temperature {t})",
    "transfer_pgd_from_tradeoff": "transfer: PGD on the trade-off head",
    "transfer_pgd_from_benign": "transfer: PGD on the benign head",
    "transfer_pgd_from_adversarial": "transfer: PGD on the adversarial head",
    "worst_case": "per-example worst case over all attacks (robust accuracy)",
}


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def _titles(result: dict) -> list[str]:
    steps = result["settings"]["pgd"]["steps"]
    return [COLUMN_TITLES[c].format(pgd_steps=steps) for c in result["columns"]]


def main_table_rows(result: dict) -> list[list[str]]:
    label = "TRADES: " if result["method"] == "trades" else ""
    return [[label + ROW_TITLES[r]] + [_pct(result["table"][r][c]) for c in result["columns"]]
            for r in result["rows"]]


def text_table(result: dict) -> str:
    """The main table as aligned text (what the CLI prints)."""
    header = ["accuracy %"] + _titles(result)
    body = main_table_rows(result)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(r, widths)))
    lines = [f"{result['dataset']} {result['method']}, {result['examples']} test images, "
             f"eps {result['settings']['epsilon']:g}:", fmt(header)] + [fmt(r) for r in body]
    summary = result.get("routed_adaptive")
    if summary and summary.get("gap_naive_minus_worst_case") is not None:
        lines.append(f"routed: naive hard-switch PGD {_pct(summary['naive_hard_switch_pgd'])}% vs "
                     f"adaptive worst case {_pct(summary['worst_case'])}% "
                     f"(gap {_pct(summary['gap_naive_minus_worst_case'])} points)")
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"# Evaluation: {result['dataset']}, {result['method']}",
        "",
        f"{result['examples']} test images, L-inf eps = {s['epsilon']:g}, seed {result['seed']}. "
        "Accuracy in %.",
        "",
    ]
    lines += _md_table(["output"] + _titles(result), main_table_rows(result))
    lines += [
        "",
        f"- PGD: cross-entropy, step {s['pgd']['step_size']:g}, {s['pgd']['steps']} steps, uniform "
        "random start (TRADES' evaluation). CW-Linf: PGD on the CW margin loss (confidence "
        f"{s['cw']['confidence']:g}), {s['cw']['steps']} steps.",
        f"- APGD-CE and targeted APGD-DLR (AutoAttack's core, {s['apgd']['implementation']}): "
        f"{s['apgd']['steps']} iterations, {s['apgd']['restarts']} restart(s), "
        f"{s['apgd']['dlr_targets']} target classes.",
        "- Every attack on the routed model goes through a straight-through switch (forward: the "
        "hard routing; backward: its soft relaxation).",
        "- Worst case: an example counts only if it is classified correctly on the clean input and "
        "on every adversarial input generated, by any attack against any output (white-box and "
        "transfer).",
    ]
    summary = result.get("routed_adaptive")
    if summary:
        lines += ["", "## The routed model under adaptive attacks", ""]
        rows = [[SUMMARY_TITLES[k].format(t=s["switch_temperature"]), _pct(v)]
                for k, v in summary.items() if k in SUMMARY_TITLES]
        lines += _md_table(["attack", "routed accuracy %"], rows)
        if summary.get("gap_naive_minus_worst_case") is not None:
            lines += ["", f"Naive hard-switch PGD overstates the routed model's robustness by "
                      f"{_pct(summary['gap_naive_minus_worst_case'])} points."]
    stats = result.get("route_stats")
    if stats:
        lines += ["", "## Routes", ""]
        header = ["inputs"] + [f"{r} share / acc" for r in stats["clean"]]
        body = []
        for name, title in (("clean", "clean"), ("worst_case_adversarial", "worst-case adversarial")):
            body.append([title] + [f"{_pct(v['share'])} / {_pct(v['accuracy'])}"
                                   for v in stats[name].values()])
        lines += _md_table(header, body)
    overlap = result.get("feature_overlap")
    if overlap:
        sm = overlap["summary"]
        fmt = lambda v: "—" if v is None else f"{v:.2f}"
        lines += ["", f"## Figure 1 (right): top-{overlap['k']} feature dims shared", "",
                  f"Attack: `{overlap['attack']}`. Mean shared dims with the true class: clean "
                  f"{fmt(sm['clean_with_true_class'])}, attacked {fmt(sm['attacked_with_true_class'])}; "
                  f"fooled images with their adversarial class {fmt(sm['fooled_with_adversarial_class'])} "
                  f"(other classes {fmt(sm['attacked_with_other_classes'])}). "
                  f"Matrices: `{overlap['json']}`, heatmap: `{overlap['png']}`."]
    if result.get("notes"):
        lines += ["", "Notes: " + "; ".join(result["notes"]) + "."]
    lines += ["", f"({result['seconds']} s)", ""]
    return "\n".join(lines)


def write(model_dir: str, result: dict) -> None:
    io_utils.atomic_write_json(os.path.join(model_dir, EVAL_JSON), result)
    io_utils.atomic_write_text(os.path.join(model_dir, EVAL_MD), markdown(result))
