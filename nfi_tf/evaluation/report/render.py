"""eval.md (the tables) and the text table the CLI prints, from an `EvalReport`. Every report
lists exactly the attacks that ran and any budget below AutoAttack's standard version."""

from __future__ import annotations

from nfi_tf import outputs
from nfi_tf.evaluation import suite
from nfi_tf.evaluation.report.schema import EvalReport
from nfi_tf.evaluation.report.sections import RoutedSummary
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Method, Norm

ROW_TITLES = outputs.ROW_TITLES
ONNX_SQUARE_RUN = "square (ONNX Runtime)"  # its name in attacks_run
_FIXED_TITLES = {Column.CLEAN: Column.CLEAN.value, Column.AUTOATTACK: "AutoAttack",
                 Column.WORST_CASE: "worst case"}


def column_title(column: str, pgd_steps: int | None = None) -> str:
    """A table column's title: a registered attack's own, or the fixed ones."""
    if column in _FIXED_TITLES:
        return _FIXED_TITLES[column]
    spec = next(s for s in suite.specs() if s.option_name == column or s.name == column)
    if pgd_steps is None:
        return spec.title.replace("-{pgd_steps}", "")
    return spec.title.format(pgd_steps=pgd_steps)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def _titles(result: EvalReport) -> list[str]:
    steps = result.settings.entries.get(suite.get(Column.PGD).entry, {}).get("steps")
    return [column_title(c, steps) for c in result.columns]


def main_table_rows(result: EvalReport) -> list[list[str]]:
    label = f"{Method.TRADES.title}: " if result.method == Method.TRADES else ""
    return [[label + ROW_TITLES.get(r, r)] + [_pct(result.cell(r, c)) for c in result.columns]
            for r in result.rows]


def align(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt(header)] + [fmt(r) for r in body]


def _gap_line(summary: RoutedSummary | None) -> str | None:
    if summary is None or summary.gap_naive_minus_worst_case is None:
        return None
    line = (f"routed: PGD through the hard switch {_pct(summary.naive_hard_switch_pgd)}% vs worst "
            f"case {_pct(summary.worst_case)}% (gap {_pct(summary.gap_naive_minus_worst_case)} "
            "points)")
    if summary.tradeoff_gap_pgd_minus_worst_case is not None:
        line += (f"; the trade-off head, which has no switch: PGD {_pct(summary.tradeoff_pgd)}% vs "
                 f"worst case {_pct(summary.tradeoff_worst_case)}% "
                 f"(gap {_pct(summary.tradeoff_gap_pgd_minus_worst_case)} points)")
    return line


def _images(result: EvalReport) -> str:
    """"500 test images", or "500 validation images" for --split=validation."""
    return f"{result.examples} {result.settings.split} images"


def text_table(result: EvalReport) -> str:
    """The main table as aligned text (what the CLI prints)."""
    s = result.settings
    lines = [f"{result.dataset} {result.method}, {_images(result)}, "
             f"{'L2 ' if s.norm == Norm.L2 else ''}eps {s.epsilon:g}:"]
    lines += align(["accuracy %"] + _titles(result), main_table_rows(result))
    gap = _gap_line(result.routed_adaptive)
    if gap:
        lines.append(gap)
    onnx = result.onnx
    if onnx:
        lines.append(f"exported ONNX model: Square through ONNX Runtime {_pct(onnx.square_onnx)}%, "
                     f"worst case {_pct(onnx.worst_case)}%")
    deviations = s.autoattack_deviations
    if deviations:  # only the attacks that ran have lines here
        lines.append("below AutoAttack's standard budget: " + "; ".join(deviations))
    return "\n".join(lines)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def families_run(result: EvalReport) -> list[suite.AttackSpec]:
    """The registered attacks that ran, in run order."""
    ran = {k.family for k in result.attack_keys if not k.is_clean}
    return [spec for spec in suite.specs() if spec.name in ran]


def attack_notes(result: EvalReport) -> list[str]:
    """One line per attack family that ran, with its budget (nothing that did not run)."""
    s = result.settings
    lines = [f"- {spec.note(s.entry(spec.entry))}" for spec in families_run(result)]
    autoattack = suite.autoattack()
    if result.suite_keys:
        lines.append("- AutoAttack column: " + ", ".join(suite.get(n).title for n in autoattack[:-1])
                     + f" and {suite.get(autoattack[-1]).title} in that order, each on the "
                     "points the previous ones left robust (AutoAttack's standard version).")
    ran = {spec.name for spec in families_run(result)}
    missing = [suite.get(n) for n in autoattack if n not in ran]
    if ran & set(autoattack) and missing:  # some of AutoAttack's attacks, not all
        lines.append("- Not run: " + ", ".join(spec.title for spec in missing) + " (AutoAttack's "
                     "other attacks), so this is not AutoAttack's full evaluation.")
    if ONNX_SQUARE_RUN in result.attacks_run:
        lines.append("- The exported ONNX model (ONNX Runtime) is scored on every adversarial input and "
                     "attacked by Square through ONNX Runtime itself.")
    if s.autoattack_deviations:
        lines.append("- Below AutoAttack's standard budget: " + "; ".join(s.autoattack_deviations) + ".")
    return lines


def _transfer_only_rows(result: EvalReport) -> list[str]:
    """The table's rows no white-box attack targeted (scored on the other rows' inputs only)."""
    attacked = result.settings.attack_outputs or []
    return [r for r in result.rows if attacked and r not in attacked]


def _how_it_ran(result: EvalReport) -> list[str]:
    s = result.settings
    lines = ["", "Attacks that ran:", ""] + attack_notes(result)
    if result.method == Method.NFI:
        lines.append("- Every gradient attack on the routed model runs through the hard switch, a "
                     "straight-through switch and a soft switch, every iterate judged by the hard routed "
                     "output; the column is the per-example worst of the three.")
    lines.append("- Worst case: an example counts only if it is classified correctly on the clean input "
                 "and on every adversarial input generated, by any attack against any output "
                 "(white-box and transfer).")
    transfer_only = _transfer_only_rows(result)
    if transfer_only:
        lines.append("- Attacked white-box: " + ", ".join(ROW_TITLES.get(r, r) for r in s.attack_outputs)
                     + ". The worst case of " + ", ".join(ROW_TITLES.get(r, r) for r in transfer_only)
                     + " comes from those attacks' inputs alone (transfer): an upper bound on their "
                     "robustness.")
    return lines


def _routed_section(result: EvalReport) -> list[str]:
    summary = result.routed_adaptive
    if not summary:
        return []
    lines = ["", "## The routed model, attack by attack", ""]
    in_suite = set(result.suite_keys)
    rows = [[f"`{k}`", _pct(v), "still robust (AutoAttack)" if k in in_suite else "all"]
            for k, v in sorted(summary.by_attack.items())]
    lines += md_table(["attack key", "routed accuracy %", "attacked images"], rows)
    gap = _gap_line(summary)
    if gap:
        lines += ["", gap[0].upper() + gap[1:] + "."]
    return lines


def _onnx_section(result: EvalReport) -> list[str]:
    onnx = result.onnx
    if not onnx:
        return []
    return ["", "## The exported model (ONNX Runtime)", "",
            f"`{result.settings.onnx}`: clean {_pct(onnx.clean)}%, Square through ONNX "
            f"Runtime {_pct(onnx.square_onnx)}%, every Keras-made adversarial input "
            f"transferred {_pct(onnx.transfer_of_every_keras_attack)}%, worst case "
            f"{_pct(onnx.worst_case)}% (the Keras routed model's worst case: "
            f"{_pct(onnx.keras_routed_worst_case)}%)."]


def _cumulative_sections(result: EvalReport) -> list[str]:
    lines = []
    if result.cascade_cumulative:
        lines += ["", "## Worst case in cascade, robust accuracy after each attack", "",
                  "Each attack ran only on the points every earlier attack (and its transfers) left "
                  "robust on the output it attacks; per-attack columns are not measured in this mode.",
                  ""]
        for row, after in result.cascade_cumulative.items():
            lines += md_table([ROW_TITLES.get(row, row)] + [column_title(f) for f in after],
                              [["robust %"] + [_pct(v) for v in after.values()]]) + [""]
    cumulative = result.autoattack_cumulative
    if cumulative:
        lines += ["", "## AutoAttack, robust accuracy after each attack", ""]
        fams = list(next(iter(cumulative.values())))
        lines += md_table(["output"] + [column_title(f) for f in fams],
                          [[ROW_TITLES.get(r, r)] + [_pct(v[f]) for f in fams]
                           for r, v in cumulative.items()])
    return lines


def _routes_section(result: EvalReport) -> list[str]:
    stats = result.route_stats
    if not stats:
        return []
    header = ["inputs"] + [f"{r} share / acc" for r in stats.clean]
    body = [[title] + [f"{_pct(v.share)} / {_pct(v.accuracy)}" for v in shares.values()]
            for title, shares in ((Column.CLEAN.value, stats.clean),
                                  ("worst-case adversarial", stats.worst_case_adversarial))]
    return ["", "## Routes", ""] + md_table(header, body)


def _overlap_section(result: EvalReport) -> list[str]:
    overlap = result.feature_overlap
    if not overlap:
        return []
    sm = overlap.summary
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    return ["", f"## Figure 1 (right): top-{overlap.k} feature dims shared", "",
            f"Attack: `{overlap.attack}`. Mean shared dims with the true class: clean "
            f"{fmt(sm['clean_with_true_class'])}, attacked {fmt(sm['attacked_with_true_class'])}; "
            f"fooled images with their adversarial class {fmt(sm['fooled_with_adversarial_class'])} "
            f"(other classes {fmt(sm['attacked_with_other_classes'])})."
            + (f" Matrices: `{overlap.json}`, heatmap: `{overlap.png}`." if overlap.json else "")]


def _footer(result: EvalReport) -> list[str]:
    lines = []
    if result.notes:
        lines += ["", "Notes: " + "; ".join(result.notes) + "."]
    by_family = seconds_by_family(result)
    if by_family:
        lines += ["", "Time by attack family (attacking + scoring, s): " + ", ".join(
            f"{name} {secs:.0f}" for name, secs in by_family.items()) + "."]
    return lines + ["", f"Per-example records: `{result.records}` ({result.seconds} s)", ""]


def markdown(result: EvalReport) -> str:
    s = result.settings
    lines = [f"# Evaluation: {result.dataset}, {result.method}", "",
             f"{_images(result)}, {Norm(s.norm).title} eps = {s.epsilon:g}, seed {result.seed}. "
             "Accuracy in %.", ""]
    lines += md_table(["output"] + _titles(result), main_table_rows(result))
    if s.model:  # a classifier nfi-tf did not train: what it is and how it was run
        lines += ["", f"Model: {s.model}."]
    for section in (_how_it_ran, _routed_section, _onnx_section, _cumulative_sections,
                    _routes_section, _overlap_section, _footer):
        lines += section(result)
    return "\n".join(lines)


def seconds_by_family(result: EvalReport) -> dict[str, float]:
    """Wall seconds per attack family, AutoAttack's suite apart, in the order they ran (empty for
    an evaluation made before the times were recorded)."""
    in_suite = set(result.suite_keys)
    out: dict[str, float] = {}
    for key, secs in result.seconds_by_attack.items():
        name = f"AutoAttack {key.family}" if key in in_suite else key.family
        out[name] = out.get(name, 0.0) + secs
    return out


def merged_markdown(merged: dict, worst: dict) -> str:
    rows = merged["rows"]
    lines = ["# Merged evaluation: per-example worst case over several runs", "",
             f"{len(merged['labels'])} test images, eps {merged['meta']['epsilon']:g}; runs:", ""]
    lines += [f"- `{p}`" for p in merged["meta"]["merged_from"]]
    header = ["output"] + [f"run {i + 1}" for i in range(len(merged["per_run_worst_case"]))] + ["merged"]
    body = [[ROW_TITLES.get(r, r)] + [_pct(run[r]) for run in merged["per_run_worst_case"]] + [_pct(worst[r])]
            for r in rows]
    return "\n".join(lines + [""] + md_table(header, body) + [""])
