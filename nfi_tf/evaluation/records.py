"""Per-example records: which images stayed correct under each attack, on each output.

`eval.npz` beside eval.json keeps, for every output (row) and attack key, the per-example
correctness and margin, the labels and the example indices, and (with --save_adversarial)
each example's worst adversarial image per output. Several evaluations of one model on the same
images (other seeds, other attacks, another session) merge into one worst case: an example
counts as robust only if it survived every attack of every run (`merge`).
"""

from __future__ import annotations

import json

import numpy as np

from nfi_tf import io_utils
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.keys import AttackKey

SEP = "|"


def save(path: str, meta: dict, labels: np.ndarray, correct: dict, margins: dict,
         adversarial: dict | None = None) -> None:
    """Write the records atomically (npz, compressed); keys are stored as their text."""
    arrays = {"labels": np.asarray(labels, np.int32),
              "indices": np.arange(len(labels), dtype=np.int32),
              "meta": np.array(json.dumps(meta))}
    for row, by_key in correct.items():
        for key, v in by_key.items():
            arrays[f"correct{SEP}{row}{SEP}{key}"] = np.asarray(v, bool)
            arrays[f"margin{SEP}{row}{SEP}{key}"] = np.asarray(margins[row][key], np.float32)
    for row, images in (adversarial or {}).items():
        arrays[f"adversarial{SEP}{row}"] = np.asarray(images, np.float32)
    with io_utils.atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def load(path: str) -> dict:
    """{meta, labels, indices, correct: {row: {AttackKey: [N]}}, margins: {...}}."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {"meta": json.loads(str(z["meta"])), "labels": z["labels"], "indices": z["indices"],
                   "correct": {}, "margins": {}}
            for name in z.files:
                kind, *rest = name.split(SEP)
                if kind in ("correct", "margin") and len(rest) == 2:
                    bucket = out["correct" if kind == "correct" else "margins"]
                    bucket.setdefault(rest[0], {})[AttackKey.parse(rest[1])] = z[name]
    except (OSError, ValueError, KeyError) as e:
        raise NfiError(f"{path} is not an evaluation record (eval.npz): {type(e).__name__}") from e
    return out


def merge(paths: list[str]) -> dict:
    """One record from several runs on the same model, images and budget (keys suffixed ~run)."""
    if len(paths) < 2:
        raise NfiError(f"merge needs at least two eval.npz files. Received: {paths}")
    runs = [load(p) for p in paths]
    first = runs[0]
    for path, run in zip(paths[1:], runs[1:]):
        for field in ("dataset", "epsilon", "model"):  # model: the sha256 of model.keras
            if run["meta"].get(field) != first["meta"].get(field):
                raise NfiError(f"{path} is from another evaluation: {field}="
                               f"{run['meta'].get(field)!r}, but {paths[0]} has "
                               f"{first['meta'].get(field)!r}")
        if not np.array_equal(run["labels"], first["labels"]):
            raise NfiError(f"{path} covers other images than {paths[0]} (labels differ)")
    correct, margins = {}, {}
    for i, run in enumerate(runs):
        for row, by_key in run["correct"].items():
            for key, v in by_key.items():
                name = key if i == 0 or key.is_clean else key.in_run(i + 1)
                correct.setdefault(row, {})[name] = v
                margins.setdefault(row, {})[name] = run["margins"][row][key]
    rows = [r for r in first["correct"] if all(r in run["correct"] for run in runs)]
    return {"meta": {**first["meta"], "merged_from": list(paths)}, "labels": first["labels"],
            "rows": rows, "correct": {r: correct[r] for r in rows},
            "margins": {r: margins[r] for r in rows},
            "per_run_worst_case": [{r: float(_all(run["correct"][r]).mean()) for r in rows}
                                   for run in runs]}


def _all(by_key: dict) -> np.ndarray:
    return np.stack([np.asarray(v, bool) for v in by_key.values()]).all(axis=0)
