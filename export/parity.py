"""Export parity: Keras vs SavedModel vs ONNX Runtime on the same real images.

Logits and probabilities must agree within `atol` and routes must be identical. Routes come
from three argmaxes, so a near-tie (top-1/top-2 gap of the order of float rounding) could flip
between runtimes: every route mismatch is reported with the argmax margins of that image,
which tells a rounding flip (margin ~1e-6) from a conversion bug (large margin). Either fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from nfi_tf import outputs
from nfi_tf.errors import NfiError

_ORDER = outputs.SERVED_FLOAT
Runtime = Callable[[np.ndarray], dict[str, np.ndarray]]


class ParityError(NfiError):
    """The exported model does not reproduce the Keras model."""


@dataclasses.dataclass
class ParityReport:
    examples: int
    atol: float
    max_abs_diff: dict[str, dict[str, float]]  # runtime -> output -> max |runtime - keras|
    route_agreement: dict[str, float]  # runtime -> fraction of identical routes
    route_mismatches: dict[str, list[int]]  # runtime -> image indices
    margins: np.ndarray  # per image: smallest top-1/top-2 gap over the routing argmaxes

    @property
    def ok(self) -> bool:
        return (all(d <= self.atol for diffs in self.max_abs_diff.values() for d in diffs.values())
                and not any(self.route_mismatches.values()))

    def lines(self) -> list[str]:
        out = [f"parity on {self.examples} real test images (atol {self.atol:g}); "
               f"smallest routing argmax margin {float(self.margins.min()):.3g}"]
        for runtime, diffs in self.max_abs_diff.items():
            figures = ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
            out.append(f"  {runtime} vs keras: max abs diff {figures}; routes identical "
                       f"{100 * self.route_agreement[runtime]:.2f}%")
        return out

    def failure(self) -> str:
        problems = []
        for runtime, diffs in self.max_abs_diff.items():
            bad = {k: v for k, v in diffs.items() if v > self.atol}
            if bad:
                problems.append(f"{runtime} outputs differ beyond atol {self.atol:g}: "
                                + ", ".join(f"{k} {v:.2e}" for k, v in bad.items()))
            idx = self.route_mismatches[runtime]
            if idx:
                problems.append(f"{runtime} routes differ on {len(idx)} images (indices "
                                f"{idx[:5]}, argmax margins "
                                f"{[float(f'{m:.3g}') for m in self.margins[idx[:5]]]})")
        return "export parity failed: " + "; ".join(problems)

    def to_dict(self) -> dict:
        return {"examples": self.examples, "atol": self.atol, "max_abs_diff": self.max_abs_diff,
                "route_agreement": self.route_agreement,
                "route_mismatches": self.route_mismatches,
                "min_argmax_margin": float(self.margins.min())}


def in_batches(fn: Runtime, images: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    parts = [fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def argmax_margins(reference: dict[str, np.ndarray]) -> np.ndarray:
    """Per image, the smallest top-1 minus top-2 gap among the logits routing looks at."""
    gaps = []
    for name in outputs.ROUTING_EVIDENCE:
        if name in reference:
            top2 = np.sort(reference[name], axis=-1)[:, -2:]
            gaps.append(top2[:, 1] - top2[:, 0])
    return np.min(gaps, axis=0)


def compare(reference: dict[str, np.ndarray], runtimes: dict[str, dict[str, np.ndarray]],
            atol: float) -> ParityReport:
    """Compare each runtime's outputs with Keras' (`reference`) on the same images."""
    diffs, agreement, mismatches = {}, {}, {}
    for runtime, out in runtimes.items():
        missing = set(out) - set(reference)
        if missing:
            raise ParityError(f"{runtime} has outputs Keras does not: {sorted(missing)}")
        names = [k for k in _ORDER if k in out] + sorted(set(out) - set(_ORDER) - {outputs.ROUTE})
        diffs[runtime] = {k: float(np.max(np.abs(out[k].astype(np.float64) - reference[k])))
                          for k in names}
        same = out[outputs.ROUTE] == reference[outputs.ROUTE]
        agreement[runtime] = float(same.mean())
        mismatches[runtime] = [int(i) for i in np.flatnonzero(~same)]
    return ParityReport(examples=len(reference[outputs.ROUTE]), atol=atol, max_abs_diff=diffs,
                        route_agreement=agreement, route_mismatches=mismatches,
                        margins=argmax_margins(reference))


def check(reference: dict[str, np.ndarray], runtimes: dict[str, dict[str, np.ndarray]],
          atol: float) -> ParityReport:
    """`compare`, raising ParityError (with the figures) when anything disagrees."""
    report = compare(reference, runtimes, atol)
    if not report.ok:
        raise ParityError(report.failure() + " | " + " | ".join(report.lines()))
    return report


def check_as_trained(as_trained: dict[str, np.ndarray], exported: dict[str, np.ndarray],
                     atol: float) -> ParityReport:
    """The float32 export vs the model as trained in mixed precision (half-precision compute).

    Half precision moves logits by far more than float rounding, so this is judged on the
    probabilities (bounded: one `atol` fits every model), and a route that differs must sit on
    a near-tie: an image whose as-trained argmax margin is within twice the largest logit
    difference seen, i.e. a flip that rounding explains. Anything else is a conversion bug.
    """
    report = compare(as_trained, {"onnx_runtime": exported}, atol)
    diffs = report.max_abs_diff["onnx_runtime"]
    logit_diff = max(v for k, v in diffs.items() if k != outputs.PROBABILITIES)
    unexplained = [i for i in report.route_mismatches["onnx_runtime"]
                   if report.margins[i] > 2 * logit_diff]
    problems = []
    if diffs[outputs.PROBABILITIES] > atol:
        problems.append(f"probabilities differ by {diffs[outputs.PROBABILITIES]:.2e} > atol "
                        f"{atol:g}")
    if unexplained:
        problems.append(f"routes differ on {len(unexplained)} images whose argmax margin exceeds "
                        f"twice the largest logit difference {logit_diff:.2e} (indices "
                        f"{unexplained[:5]})")
    if problems:
        raise ParityError("parity with the model as trained failed: " + "; ".join(problems)
                          + " | " + " | ".join(report.lines()))
    return report
