"""`--merge`: several evaluations of one model on the same images (other seeds, other attacks,
another session) as one per-example worst case: an example counts as robust only if it survived
every attack of every run. Writes eval_merged.json and eval_merged.md."""

from __future__ import annotations

import os
from collections.abc import Callable

from nfi_tf import io_utils
from nfi_tf.evaluation import records
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.report import EVAL_JSON, EVAL_NPZ, MERGED_JSON, MERGED_MD, EvalReport, render
from nfi_tf.evaluation.vocab import Column


def _report_beside(npz_path: str) -> EvalReport | None:
    """The eval.json written with an eval.npz (a renamed record has none that is surely its own)."""
    if os.path.basename(npz_path) != EVAL_NPZ:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(npz_path)), EVAL_JSON)
    return EvalReport.load(path) if os.path.exists(path) else None


def _run_summary(r: EvalReport | None) -> dict | None:
    if r is None:
        return None
    return {"eval_json_version": r.version, "seed": r.seed, "attacks": r.settings.attacks,
            "suite_keys": [str(k) for k in r.suite_keys]}


def merge_evaluations(paths: list[str], out_dir: str, log: Callable[[str], None] = print) -> dict:
    """Merge the eval.npz of several runs on one model into one worst case."""
    merged = records.merge(paths)
    # Each run's report, where it sits beside its records (an unknown eval.json version is a
    # one-line error here, not a silent merge): which of its attacks ran AutoAttack's way.
    reports = [_report_beside(p) for p in paths]
    worst = {row: wc.all_correct(merged["correct"][row]) for row in merged["rows"]}
    result = {"merged_from": list(paths), "examples": int(len(merged["labels"])),
              "meta": merged["meta"], "per_run_worst_case": merged["per_run_worst_case"],
              Column.WORST_CASE.value: {row: float(v.mean()) for row, v in worst.items()},
              "attack_keys": {row: sorted(str(k) for k in merged["correct"][row]) for row in merged["rows"]},
              "runs": [_run_summary(r) for r in reports]}
    io_utils.atomic_write_json(os.path.join(out_dir, MERGED_JSON), result)
    text = render.merged_markdown(merged, result[Column.WORST_CASE])
    io_utils.atomic_write_text(os.path.join(out_dir, MERGED_MD), text)
    log(text)
    return result
