"""The claims the reproduction judges, and their verdict rule.

A claim says one table cell is higher than another: (run, output row, column) against (run,
output row, column), e.g. the routed nfi model's worst case against TRADES'. It is judged on the
same test images with McNemar's exact test, seeds pooled (nfi_tf.evaluation.paired): each seed
pairs the two runs' per-example correctness (eval.npz), the disagreement counts are added over
the seeds finished for both runs. Verdicts are mechanical, so anyone rerunning gets the same
words (`paired.verdict`): *reproduced* when the pooled test is significant at 5% in the claimed
direction and no seed points the other way, *not reproduced* when it is significant the other
way, *inconclusive* otherwise.

`runs` below is {run base name: {seed or None: finished run}}; a finished run has `dir` (its
eval.npz) and `report` (its EvalReport), as tables.FinishedRun.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nfi_tf.evaluation import paired
from nfi_tf.evaluation.vocab import Column
from nfi_tf.experiments.reproduction import CONTROL_RUN, GUARD_RUN, run_name
from nfi_tf.outputs import NONROBUST_PART, ROBUST_PART, ROUTED, TRADEOFF
from nfi_tf.vocab import Method

# The paper's CIFAR-10 numbers (WRN-34-10, 200 epochs): Table 1 (robustness, accuracy) and
# Table 2 (PGD, C&W, clean).
PAPER_TABLE1 = {"robust part": (61.5, 80.7), "non-robust part": (49.14, 88.64),
                "baseline (TRADES)": (55.4, 84.9)}
PAPER_TABLE2 = {"ours (routed)": (63.1, 65.4, 91.4), "TRADES": (55.4, 65.0, 84.9)}


class Cell(NamedTuple):
    run: str  # the run's base name (seeds are pooled); a main run's is its Method
    row: str  # the output
    column: Column  # one of tables.COLUMNS


class Claim(NamedTuple):
    id: str
    text: str
    higher: Cell  # claimed higher
    lower: Cell  # claimed lower


def _claim(claim_id: str, text: str, higher: tuple, lower: tuple) -> Claim:
    return Claim(claim_id, text, Cell(*higher), Cell(*lower))


# The paper's Table 2 compares the routed model with TRADES; its Table 1 the two parts alone
# with each other and with the TRADES baseline.
CLAIMS = (
    _claim("table2_routed_more_accurate", "routed nfi more accurate than TRADES",
           (Method.NFI, ROUTED, Column.CLEAN), (Method.TRADES, TRADEOFF, Column.CLEAN)),
    _claim("table2_routed_more_robust", "routed nfi more robust than TRADES (worst case)",
           (Method.NFI, ROUTED, Column.WORST_CASE), (Method.TRADES, TRADEOFF, Column.WORST_CASE)),
    _claim("table2_pgd_column", "routed nfi above TRADES under PGD",
           (Method.NFI, ROUTED, Column.PGD), (Method.TRADES, TRADEOFF, Column.PGD)),
    _claim("table2_cw_column", "routed nfi above TRADES under CW-Linf",
           (Method.NFI, ROUTED, Column.CW), (Method.TRADES, TRADEOFF, Column.CW)),
    _claim("table1_robust_part_more_robust",
           "robust part more robust than the non-robust part (PGD)",
           (Method.NFI, ROBUST_PART, Column.PGD), (Method.NFI, NONROBUST_PART, Column.PGD)),
    _claim("table1_robust_part_more_robust_worst_case",
           "robust part more robust than the non-robust part (worst case)",
           (Method.NFI, ROBUST_PART, Column.WORST_CASE), (Method.NFI, NONROBUST_PART, Column.WORST_CASE)),
    _claim("table1_robust_part_less_accurate", "robust part less accurate than the non-robust part",
           (Method.NFI, NONROBUST_PART, Column.CLEAN), (Method.NFI, ROBUST_PART, Column.CLEAN)),
    _claim("table1_robust_part_above_trades", "robust part more robust than TRADES (PGD)",
           (Method.NFI, ROBUST_PART, Column.PGD), (Method.TRADES, TRADEOFF, Column.PGD)),
)
# The route guard (not the paper's method, docs/method.md §6) against the paper's nfi and TRADES.
GUARD_CLAIMS = (
    _claim("guard_more_robust_than_nfi", "route guard: routed worst case above nfi's",
           (GUARD_RUN, ROUTED, Column.WORST_CASE), (Method.NFI, ROUTED, Column.WORST_CASE)),
    _claim("guard_more_robust_than_trades", "route guard: routed worst case above TRADES'",
           (GUARD_RUN, ROUTED, Column.WORST_CASE), (Method.TRADES, TRADEOFF, Column.WORST_CASE)),
    _claim("guard_costs_accuracy", "route guard: nfi's routed clean accuracy above the guard's",
           (Method.NFI, ROUTED, Column.CLEAN), (GUARD_RUN, ROUTED, Column.CLEAN)),
)
# Not the paper's claims: where nfi's gain or loss against TRADES comes from, at the main budget
# and seeds — the switch (the routed model against its own trade-off head) or the backbone (that
# head, which has no switch, against TRADES).
MECHANISM_CLAIMS = (
    _claim("routing_helps",
           "the routing helps: routed worst case above nfi's own trade-off head's",
           (Method.NFI, ROUTED, Column.WORST_CASE), (Method.NFI, TRADEOFF, Column.WORST_CASE)),
    _claim("nfi_backbone_above_trades",
           "nfi's trade-off head alone more robust than TRADES (worst case)",
           (Method.NFI, TRADEOFF, Column.WORST_CASE), (Method.TRADES, TRADEOFF, Column.WORST_CASE)),
    # The control: TRADES whose loss carries nfi's total loss weight (3.1), same budget and seeds.
    _claim("nfi_backbone_above_loss_weight_control",
           "... and than TRADES with nfi's total loss weight (worst case)",
           (Method.NFI, TRADEOFF, Column.WORST_CASE), (CONTROL_RUN, TRADEOFF, Column.WORST_CASE)),
    _claim("routed_above_loss_weight_control",
           "routed nfi more robust than TRADES with nfi's total loss weight (worst case)",
           (Method.NFI, ROUTED, Column.WORST_CASE), (CONTROL_RUN, TRADEOFF, Column.WORST_CASE)),
    _claim("loss_weight_helps_trades",
           "TRADES with nfi's total loss weight more robust than TRADES (worst case)",
           (CONTROL_RUN, TRADEOFF, Column.WORST_CASE), (Method.TRADES, TRADEOFF, Column.WORST_CASE)),
)
# Ablation claims: one seed each, paired on the same images, within the ablation budget.
ABLATION_CLAIMS = (
    _claim("aux_heads_help_backbone", "nfi's trade-off head more robust than TRADES (worst case)",
           ("ablation_nfi_reference", TRADEOFF, Column.WORST_CASE),
           ("ablation_trades", TRADEOFF, Column.WORST_CASE)),
    _claim("not_just_loss_weight", "... and than TRADES with nfi's total loss weight",
           ("ablation_nfi_reference", TRADEOFF, Column.WORST_CASE),
           ("ablation_trades_loss_weight", TRADEOFF, Column.WORST_CASE)),
    _claim("aux_gradients_matter", "... and than nfi with the auxiliary heads detached",
           ("ablation_nfi_reference", TRADEOFF, Column.WORST_CASE),
           ("ablation_detached_heads", TRADEOFF, Column.WORST_CASE)),
    _claim("counterfactual_splits_robust",
           "the robust part is more robust with the counterfactual loss (PGD)",
           ("ablation_nfi_reference", ROBUST_PART, Column.PGD),
           ("ablation_no_counterfactual", ROBUST_PART, Column.PGD)),
    _claim("counterfactual_weakens_nonrobust", "the non-robust part is less robust with it (PGD)",
           ("ablation_no_counterfactual", NONROBUST_PART, Column.PGD),
           ("ablation_nfi_reference", NONROBUST_PART, Column.PGD)),
)


def _correct(run, cell: Cell) -> np.ndarray | None:
    return paired.Evaluation(run.dir, run.report).correct(cell.row, cell.column)


def pairs(runs: dict, claim: Claim) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per seed, the per-example correctness of the two compared cells (seeds finished for both)."""
    higher, lower = runs.get(claim.higher.run, {}), runs.get(claim.lower.run, {})
    out = []
    for seed in sorted(set(higher) & set(lower), key=lambda s: s or 0):
        a, b = _correct(higher[seed], claim.higher), _correct(lower[seed], claim.lower)
        if a is not None and b is not None:
            out.append((a, b))
    return out


def judge(runs: dict, claim: Claim) -> dict | None:
    """The claim's pooled test and verdict (verdicts.json's entry); None without evidence."""
    found = pairs(runs, claim)
    if not found:
        return None
    result = paired.pooled(found)
    return {"claim": claim.text, "higher": list(claim.higher), "lower": list(claim.lower),
            "verdict": paired.verdict(result), **result}


def verdicts(runs: dict, claims=CLAIMS) -> dict:
    """{claim id: its judgement} for the claims with evidence among `runs`."""
    out = {}
    for claim in claims:
        judged = judge(runs, claim)
        if judged is not None:
            out[claim.id] = judged
    return out


def independent_checks(runs: dict) -> list[dict]:
    """Per run: the evaluation's worst case for the served output beside what the independent
    attack (scripts/independent_attack.py, outside the project's attack code) leaves; reported
    above the independent attack = a bug in the evaluation."""
    out = []
    for base in sorted(runs):
        for seed, r in sorted(runs[base].items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            ind = r.independent
            if not ind:
                continue
            reported = r.report.cell(ind["output"], Column.WORST_CASE)
            out.append({"run": base if seed is None else run_name(base, seed), "output": ind["output"],
                        "examples": ind["examples"], "reported_worst_case": reported,
                        "independent_attack": ind["accuracy_under_attack"],
                        "ok": reported is not None and reported <= ind["accuracy_under_attack"] + 1e-9})
    return out
