"""Per-example worst case: an example counts as robust only if no attack run fooled it.

Every adversarial input generated (any attack, against any output) is scored on every output,
so the worst case of an output is a minimum over white-box attacks on it *and* transfers from
attacks on the other outputs. It can only lower a number, never raise it: it is at most each
single attack's accuracy, example by example, and at most the clean accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nfi_tf.evaluation.keys import AttackKey


def margin(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """z_y - max_{j != y} z_j: > 0 where the label wins (ties resolve as argmax does)."""
    logits = np.asarray(logits, dtype=np.float64)
    idx = np.arange(len(labels))
    correct = logits[idx, labels]
    others = logits.copy()
    others[idx, labels] = -np.inf
    return correct - others.max(axis=1)


def all_correct(correct: Mapping[AttackKey, np.ndarray]) -> np.ndarray:
    """[N] True where the example is classified correctly under every entry of `correct`."""
    if not correct:
        raise ValueError("worst case over no attacks")
    return np.stack([np.asarray(v, dtype=bool) for v in correct.values()]).all(axis=0)


def worst_inputs(margins: Mapping[AttackKey, np.ndarray]) -> tuple[list[AttackKey], np.ndarray]:
    """(keys, [N] index into keys) of the input with the lowest margin, per example."""
    keys = list(margins)
    return keys, np.stack([np.asarray(margins[k]) for k in keys]).argmin(axis=0)


class Scores:
    """Per-example results of one output (row): correctness and margin under each key."""

    def __init__(self):
        self.correct: dict[AttackKey, list[np.ndarray]] = {}
        self.margins: dict[AttackKey, list[np.ndarray]] = {}

    def add(self, key: AttackKey, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Record one batch; returns its [B] correctness."""
        correct = np.argmax(logits, axis=1) == labels
        self.correct.setdefault(key, []).append(correct)
        self.margins.setdefault(key, []).append(margin(logits, labels))
        return correct

    def arrays(self) -> tuple[dict[AttackKey, np.ndarray], dict[AttackKey, np.ndarray]]:
        return ({k: np.concatenate(v) for k, v in self.correct.items()},
                {k: np.concatenate(v) for k, v in self.margins.items()})
