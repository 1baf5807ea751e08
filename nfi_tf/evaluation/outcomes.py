"""Run a plan: per batch, the clean outputs, then every planned attack makes x'; every x' is
scored on every output (and on the exported ONNX model with --onnx), so transfers cost only a
forward pass. What comes out is `Outcomes`: per output and attack key, which images stayed
correct and their margins, plus what the report's sections need (routes, features, checks,
time per attack).

Which images an attack runs on: all of them (per-attack columns); in AutoAttack's suite only
the points the suite so far left robust on its output, as AutoAttack does; with --cascade only
the points every input so far left robust on the output it attacks.

Determinism: every attack's random draws are keyed by (seed, attack key, *global* batch index),
so a run over some of the batches (a shard) makes exactly the inputs the whole run makes there.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from nfi_tf import outputs
from nfi_tf.attacks.seeds import int_seed
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.keys import CLEAN, AttackKey
from nfi_tf.evaluation.plan import Plan, PlannedAttack
from nfi_tf.evaluation.vocab import Column
from nfi_tf.progress import progress_bar

# Figure 1 (right) reads the features under the first of these attacks that ran.
OVERLAP_KEYS = tuple(AttackKey(f, outputs.TRADEOFF) for f in (Column.PGD, Column.CW, Column.APGD_CE))
# What Figure 1 reads per image: the features of the unattacked image, of the attacked one, and
# the trade-off head's answer on the attacked one.
FEATURES = ("unattacked", "attacked", "predicted")


@dataclasses.dataclass
class Outcomes:
    rows: tuple[str, ...]  # every scored row (the subject's, then the exported model's)
    labels: np.ndarray
    indices: np.ndarray  # the images' indices in the whole evaluation (all of them, or a shard's)
    correct: dict[str, dict[AttackKey, np.ndarray]]  # row -> key -> [N] bool
    margins: dict[str, dict[AttackKey, np.ndarray]]  # row -> key -> [N] margin
    routes: dict[AttackKey, np.ndarray]  # the routed model's route per input (nfi only)
    max_linf: dict[AttackKey, float]  # largest |x' - x|_inf seen
    pixel_range: dict[AttackKey, tuple[float, float]]  # (min, max) of x'
    seconds: dict[AttackKey, float]  # wall time per attack: attacking + scoring
    overlap_key: AttackKey | None = None  # Figure 1 (right): whose features were kept
    features: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    inputs: dict[AttackKey, np.ndarray] = dataclasses.field(default_factory=dict)  # --save_adversarial

    def worst(self) -> dict[str, np.ndarray]:
        """Per row, the per-example worst case over every input."""
        return {row: wc.all_correct(self.correct[row]) for row in self.rows}

    def worst_images(self) -> dict[str, np.ndarray]:
        """Per output, each example's lowest-margin input (what --save_adversarial keeps)."""
        out = {}
        for row in self.rows:
            keys, idx = wc.worst_inputs(self.margins[row])
            stacked = np.stack([self.inputs[k] for k in keys])
            out[row] = stacked[idx, np.arange(len(idx))]
        return out


class _Recorder:
    """Scores every input on every output and keeps what the report needs."""

    def __init__(self, plan: Plan, overlap: AttackKey | None):
        subject = plan.subject
        self._score, self.rows, self.routed = subject.score, subject.all_rows, subject.routed
        self.overlap = overlap
        self.scores = {row: wc.Scores() for row in self.rows}
        self.route_log: dict[AttackKey, list[np.ndarray]] = {}
        # Every adversarial batch is kept only for --save_adversarial: on a full test split with
        # dozens of attacks it would otherwise hold gigabytes.
        self.keep_inputs = plan.cfg.save_adversarial
        self.inputs: dict[AttackKey, list[np.ndarray]] = {}
        self.max_linf: dict[AttackKey, float] = {}
        self.pixel_range: dict[AttackKey, tuple[float, float]] = {}
        self.seconds: dict[AttackKey, float] = {}
        self.features: dict[str, list[np.ndarray]] = {f: [] for f in FEATURES}

    def record(self, key: AttackKey, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray) -> dict:
        """Score x_adv on every output; returns {row: [B] correct}."""
        out = self._score(x_adv)
        correct = {row: self.scores[row].add(key, out[row], y) for row in self.rows}
        if self.routed:
            self.route_log.setdefault(key, []).append(out[outputs.ROUTE])
        if self.keep_inputs:
            self.inputs.setdefault(key, []).append(x_adv)
        if key.is_clean:
            if self.overlap is not None:
                self.features[FEATURES[0]].append(out[outputs.FEATURE])
            return correct
        self.max_linf[key] = max(self.max_linf.get(key, 0.0), float(np.max(np.abs(x_adv - x))))
        lo, hi = self.pixel_range.get(key, (1.0, 0.0))
        self.pixel_range[key] = (min(lo, float(x_adv.min())), max(hi, float(x_adv.max())))
        if key == self.overlap:
            self.features[FEATURES[1]].append(out[outputs.FEATURE])
            self.features[FEATURES[2]].append(np.argmax(out[outputs.TRADEOFF], axis=1))
        return correct

    def outcomes(self, labels, indices) -> Outcomes:
        correct, margins = {}, {}
        for row in self.rows:
            correct[row], margins[row] = self.scores[row].arrays()
        return Outcomes(self.rows, labels, indices, correct, margins,
                        {k: np.concatenate(v) for k, v in self.route_log.items()}, self.max_linf,
                        self.pixel_range, self.seconds, self.overlap, self.features,
                        {k: np.concatenate(v) for k, v in self.inputs.items()})


def _todo(plan: Plan, p: PlannedAttack, batch_correct: dict) -> np.ndarray:
    """The images of the batch this attack runs on (see the module docstring)."""
    seen = batch_correct[p.target]
    n = len(seen[CLEAN])
    if p.every_image:
        return np.ones(n, bool)
    if plan.cfg.cascade:  # the whole worst case: only what every input so far left robust
        return wc.all_correct(seen)
    if p.suite:  # AutoAttack: only the points the suite so far left robust on this output
        done = [q.key for q in plan.planned if q.suite and q.target == p.target and q.key in seen]
        return wc.all_correct({k: seen[k] for k in [CLEAN] + done})
    return np.ones(n, bool)


def _attack_batch(plan: Plan, recorder: _Recorder, b: int, x: np.ndarray, y: np.ndarray,
                  tick: Callable[[], None]) -> None:
    """Global batch `b`: its clean record, then every planned attack."""
    batch_correct = {row: {CLEAN: v} for row, v in recorder.record(CLEAN, x, x, y).items()}
    tick()
    for p in plan.planned:
        started = time.perf_counter()
        todo = _todo(plan, p, batch_correct)
        x_adv = x.copy()
        if todo.any():
            idx = np.flatnonzero(todo)
            x_adv[idx] = plan.attacks[p.family].run(x[idx], y[idx], int_seed(plan.seed, str(p.key), b),
                                                    plan.targets[p.key])
        for row, v in recorder.record(p.key, x, x_adv, y).items():
            batch_correct[row][p.key] = v
        # Wall time per attack (attacking + scoring), so a user can see where an evaluation's
        # time goes and budget the next one (suite attacks only run on what is still robust).
        recorder.seconds[p.key] = recorder.seconds.get(p.key, 0.0) + time.perf_counter() - started
        tick()


def batch_count(plan: Plan) -> int:
    return -(-len(plan.labels) // plan.cfg.batch_size)


def _by_family(seconds: dict[AttackKey, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, secs in seconds.items():
        out[key.family] = out.get(key.family, 0.0) + secs
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"


def estimate_line(first_seconds: float, seconds: dict[AttackKey, float], images: int, batches: int) -> str:
    """What the first batch cost, per attack family, and the whole run at that rate. Attacks that
    run only on the points still robust (AutoAttack's suite, --cascade) cost less as they fall,
    so this is an upper estimate."""
    families = sorted(_by_family(seconds).items(), key=lambda kv: -kv[1])
    per_family = ", ".join(f"{f} {s:.0f} s" for f, s in families[:6])
    return (f"evaluate: batch 1/{batches} ({images} images) took {_duration(first_seconds)} "
            f"({first_seconds / max(images, 1):.2f} s per image; {per_family}); the whole run: "
            f"about {_duration(first_seconds * batches)}, {_duration(first_seconds * (batches - 1))} left")


def run(plan: Plan, batches: Sequence[int] | None = None, log: Callable[[str], None] | None = None,
        ) -> Outcomes:
    """Run the plan on the given global batches (default: all), in order; `log` gets one line
    after the first batch: its cost and the estimate of the whole run."""
    cfg, size = plan.cfg, plan.cfg.batch_size
    batches = list(range(batch_count(plan)) if batches is None else batches)
    keys = {p.key for p in plan.planned}
    recorder = _Recorder(plan, next((k for k in OVERLAP_KEYS if k in keys), None))
    bar = progress_bar(len(batches) * (len(plan.planned) + 1), cfg.verbose, "evaluate", unit_name="attack")
    indices, started = [], time.perf_counter()
    for i, b in enumerate(batches):
        rows = np.arange(b * size, min((b + 1) * size, len(plan.labels)))
        indices.append(rows)
        _attack_batch(plan, recorder, b, plan.x[rows], plan.labels[rows], lambda: bar.add(1))
        if i == 0 and log is not None and len(batches) > 1:
            log(estimate_line(time.perf_counter() - started, recorder.seconds, len(rows), len(batches)))
    indices = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    return recorder.outcomes(plan.labels[indices], indices)
