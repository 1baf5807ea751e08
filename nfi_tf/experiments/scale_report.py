"""The scale-trend report: does nfi's CIFAR-10 gap to TRADES close with training length or width?

Reads the finished runs under results/cifar10/ — the 2-epoch ablation pair, the 5-epoch main
pair (seed 0; seed 1 beside it), the scale plan's 20-epoch and WRN-10-2 pairs
(scale_trend.py) — and makes, from their per-image records (eval.npz):

- a table per point: training compute (the FLOP accounting, nfi_tf/flops.py), the clean and worst
  case accuracies of TRADES, of nfi's trade-off head and of its routed model, the gap
  g = TRADES - nfi's trade-off head with its standard error and McNemar's paired p (the same 500
  test images), and the routed model against TRADES;
- the verdict by the rule docs/scale_trend.md fixed before the test numbers existed:
  Δ = g(point) - g(5 epochs, seed 0), widens if Δ > 2 SE(Δ), narrows if Δ < -2 SE(Δ), else holds;
- the extrapolation to the paper's budget: a line of g against log10(compute) through the
  WRN-10-1 epoch points, with the interval its residuals give (a stated extrapolation);
- the figure results/scale_trend.png (x: training compute, y: worst case).

    python -m nfi_tf.experiments.scale_report            # writes results/scale_trend.{json,md,png}
    python -m nfi_tf.experiments.scale_report results --doc=RESULTS.md   # and RESULTS.md's block
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import numpy as np

from nfi_tf import io_utils
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import paired
from nfi_tf.evaluation.vocab import Column
from nfi_tf.outputs import ROUTED, TRADEOFF
from nfi_tf.vocab import Method

DATASET = "cifar10"
# (label, TRADES run, nfi run, backbone, on the epochs axis): the points in order of compute.
POINTS = (
    ("2 epochs", "ablation_trades", "ablation_nfi_reference", "WRN-10-1", True),
    ("5 epochs", "trades_seed0", "nfi_seed0", "WRN-10-1", True),
    ("5 epochs, seed 1", "trades_seed1", "nfi_seed1", "WRN-10-1", False),
    ("20 epochs", "trades_e20_seed0", "nfi_e20_seed0", "WRN-10-1", True),
    ("WRN-10-2, 5 epochs", "trades_wrn10_2_seed0", "nfi_wrn10_2_seed0", "WRN-10-2", False),
)
REFERENCE = "5 epochs"  # Δ is measured from the main runs' seed 0
AXES = (("epochs", "20 epochs"), ("width", "WRN-10-2, 5 epochs"))
GUARD = ("route guard, 20 epochs", "nfi_route_guard_e20_seed0")
# The paper's CIFAR-10 budget: WRN-34-10 (F = 13.3 GFLOP), PGD-10, 200 epochs of 50,000 images.
PAPER_FLOPS = 200 * 50_000 * 13.3e9 * (2 * 10 + 7)
JSON, MARKDOWN, FIGURE = "scale_trend.json", "scale_trend.md", "scale_trend.png"
# RESULTS.md shows results/scale_trend.md between these lines (`--doc=RESULTS.md` rewrites it).
DOC_BEGIN = "<!-- generated: python -m nfi_tf.experiments.scale_report --doc=RESULTS.md -->"
DOC_END = "<!-- end of the generated scale-trend block -->"


@dataclasses.dataclass
class Point:
    label: str
    backbone: str
    epochs_axis: bool
    compute: float  # training FLOPs of one run
    clean: dict[str, float]  # Method.TRADES, "nfi head", "nfi routed" -> clean accuracy
    worst: dict[str, float]  # the same -> worst case
    gap: float  # TRADES - nfi's trade-off head, worst case
    gap_se: float
    gap_p: float
    routed_minus_trades: float
    routed_p: float


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a) - mean(b) for paired 0/1 outcomes on the same images:
    sqrt((b + c) - (b - c)^2 / n) / n with b, c the discordant counts."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n, only_a, only_b = len(a), int(np.sum(a & ~b)), int(np.sum(~a & b))
    return math.sqrt(max((only_a + only_b) - (only_a - only_b) ** 2 / n, 0.0)) / n


def _training_flops(run_dir: str) -> float:
    """epochs x training images x F x (2K + 7), from the run's config.json and summary.json."""
    from nfi_tf import flops
    from nfi_tf.config import Config
    from nfi_tf.models import build_classifier

    config = Config.load(os.path.join(run_dir, "config.json"))
    with open(os.path.join(run_dir, "summary.json")) as f:
        images = json.load(f)["train_examples"]
    model = build_classifier(config.model, (32, 32, 3), 10)
    per_image = flops.train_step_flops(flops.forward_flops(model), config.attack.num_steps, 1)
    return float(config.train.epochs * images * per_image)


def measure(results_dir: str, label: str, trades: str, nfi: str, backbone: str, epochs_axis: bool) -> Point:
    d = lambda run: os.path.join(results_dir, DATASET, run)  # noqa: E731
    t, n = paired.Evaluation(d(trades)), paired.Evaluation(d(nfi))
    cells = {Method.TRADES: (t, TRADEOFF), "nfi head": (n, TRADEOFF), "nfi routed": (n, ROUTED)}
    clean = {k: float(e.correct(row, Column.CLEAN).mean()) for k, (e, row) in cells.items()}
    vectors = {k: e.correct(row, Column.WORST_CASE) for k, (e, row) in cells.items()}
    worst = {k: float(v.mean()) for k, v in vectors.items()}
    head = paired.mcnemar(vectors[Method.TRADES], vectors["nfi head"])
    routed = paired.mcnemar(vectors["nfi routed"], vectors[Method.TRADES])
    return Point(label, backbone, epochs_axis, _training_flops(d(nfi)), clean, worst,
                 worst[Method.TRADES] - worst["nfi head"],
                 paired_se(vectors[Method.TRADES], vectors["nfi head"]),
                 head["p_value"], worst["nfi routed"] - worst[Method.TRADES], routed["p_value"])


def verdict(reference: Point, point: Point) -> dict:
    """The pre-registered rule (docs/scale_trend.md)."""
    delta = point.gap - reference.gap
    se = math.hypot(point.gap_se, reference.gap_se)
    word = "widens" if delta > 2 * se else "narrows" if delta < -2 * se else "holds"
    return {"delta": delta, "se": se, "verdict": word}


def extrapolate(points: list[Point]) -> dict | None:
    """g against log10(compute) through the WRN-10-1 epoch points, at the paper's budget, with
    the interval a t distribution on the fit's residuals gives (n - 2 degrees of freedom)."""
    from scipy import stats

    axis = [p for p in points if p.epochs_axis]
    if len(axis) < 3:
        return None
    x = np.log10([p.compute for p in axis])
    y = np.array([p.gap for p in axis])
    fit = stats.linregress(x, y)
    x0 = math.log10(PAPER_FLOPS)
    dof = len(x) - 2
    resid = y - (fit.intercept + fit.slope * x)
    s = math.sqrt(float(resid @ resid) / dof) if dof else float("nan")
    se = s * math.sqrt(1 / len(x) + (x0 - x.mean()) ** 2 / float(((x - x.mean()) ** 2).sum()))
    half = float(stats.t.ppf(0.975, dof)) * se
    return {"slope_per_decade": float(fit.slope), "at_paper_budget": float(fit.intercept + fit.slope * x0),
            "interval_95": half, "paper_flops": PAPER_FLOPS, "points": len(x)}


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def table(points: list[Point]) -> list[str]:
    header = ["point", "backbone", "compute (TFLOP)", "TRADES clean / worst", "nfi head clean / worst",
              "nfi routed clean / worst", "gap: TRADES − nfi head (± SE), McNemar p",
              "routed − TRADES, p"]
    rows = [[p.label, p.backbone, f"{p.compute / 1e12:.1f}",
             f"{_pct(p.clean[Method.TRADES])} / {_pct(p.worst[Method.TRADES])}",
             f"{_pct(p.clean['nfi head'])} / {_pct(p.worst['nfi head'])}",
             f"{_pct(p.clean['nfi routed'])} / {_pct(p.worst['nfi routed'])}",
             f"{_pct(p.gap)} ± {_pct(p.gap_se)}, p = {p.gap_p:.2g}",
             f"{_pct(p.routed_minus_trades)}, p = {p.routed_p:.2g}"] for p in points]
    from nfi_tf.evaluation.report import md_table

    return md_table(header, rows)


def figure(points: list[Point], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    series = ((Method.TRADES, Method.TRADES.title, "tab:blue"),
              ("nfi head", "nfi trade-off head", "tab:orange"),
              ("nfi routed", "nfi routed model", "tab:green"))
    axis = [p for p in points if p.epochs_axis]
    wide = [p for p in points if p.backbone != "WRN-10-1"]
    for key, name, color in series:
        ax.plot([p.compute for p in axis], [100 * p.worst[key] for p in axis], "o-", color=color,
                label=f"{name} (WRN-10-1: 2, 5, 20 epochs)")
        ax.plot([p.compute for p in wide], [100 * p.worst[key] for p in wide], "s", color=color,
                markersize=9, markerfacecolor="none", label=f"{name} (WRN-10-2, 5 epochs)")
    ax.set_xscale("log")
    ax.set_xlabel("training compute per run (FLOP, the FLOP accounting)")
    ax.set_ylabel("worst case, % of 500 CIFAR-10 test images")
    ax.set_title("Does nfi's gap to TRADES close with budget? (seed 0; CPU-scale evaluation)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with io_utils.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def build(results_dir: str) -> dict:
    """Every finished point, the verdicts and the extrapolation (a point not run yet is left out)."""
    points = []
    for label, trades, nfi, backbone, on_axis in POINTS:
        done = all(os.path.exists(os.path.join(results_dir, DATASET, r, "eval.npz")) for r in (trades, nfi))
        if done:
            points.append(measure(results_dir, label, trades, nfi, backbone, on_axis))
    by_label = {p.label: p for p in points}
    verdicts = {axis: verdict(by_label[REFERENCE], by_label[label])
                for axis, label in AXES if REFERENCE in by_label and label in by_label}
    return {"points": [dataclasses.asdict(p) for p in points], "verdicts": verdicts,
            "extrapolation": extrapolate(points), "guard": guard(results_dir),
            "method": {m: m for m in (Method.TRADES, Method.NFI)}}


def guard(results_dir: str) -> dict | None:
    """The route guard at 20 epochs (not the paper's method) against TRADES at 20 epochs, paired."""
    label, run = GUARD
    trades_run = next(t for lbl, t, *_ in POINTS if lbl == AXES[0][1])
    d = lambda r: os.path.join(results_dir, DATASET, r)  # noqa: E731
    if not all(os.path.exists(os.path.join(d(r), "eval.npz")) for r in (run, trades_run)):
        return None
    g, t = paired.Evaluation(d(run)), paired.Evaluation(d(trades_run))
    # Keyed by output name (the guard's routed model, its trade-off head) and Method.TRADES.
    vectors = {out: g.correct(out, Column.WORST_CASE) for out in (ROUTED, TRADEOFF)}
    vectors[Method.TRADES] = t.correct(TRADEOFF, Column.WORST_CASE)
    return {"label": label, "run": run,
            Column.CLEAN: {out: float(g.correct(out, Column.CLEAN).mean()) for out in (ROUTED, TRADEOFF)},
            Column.WORST_CASE: {k: float(v.mean()) for k, v in vectors.items()},
            "p_vs_trades": {out: paired.mcnemar(vectors[out], vectors[Method.TRADES])["p_value"]
                            for out in (ROUTED, TRADEOFF)}}


def markdown(result: dict) -> list[str]:
    """The table, the verdicts by the fixed rule, the extrapolation, and which points are still
    to run: what results/scale_trend.md holds and RESULTS.md shows between its markers."""
    points = [Point(**p) for p in result["points"]]
    lines = table(points) + [""]
    for axis, label in AXES:
        v = result["verdicts"].get(axis)
        if v is None:
            lines.append(f"- {axis}: not measured yet ({label} has not finished).")
        else:
            lines.append(f"- {axis} ({label} against {REFERENCE}): the trade-off-head gap "
                         f"**{v['verdict']}** (Δ = {_pct(v['delta'])} ± {_pct(v['se'])} points; "
                         "the rule: widens if Δ > 2 SE, narrows if Δ < −2 SE, else holds).")
    x = result["extrapolation"]
    if x is None:
        lines.append("- Extrapolation to the paper's budget: needs the three WRN-10-1 epoch points.")
    else:
        lines.append(f"- Extrapolation (a stated extrapolation, not a claim): the gap moves "
                     f"{_pct(x['slope_per_decade'])} points per decade of compute; at the paper's "
                     f"{x['paper_flops'] / 1e18:.1f} EFLOP the line gives {_pct(x['at_paper_budget'])} "
                     f"± {_pct(x['interval_95'])} points (95%, {x['points']} points).")
    g = result.get("guard")
    if g is not None:
        w, clean = g[Column.WORST_CASE], g[Column.CLEAN]
        lines.append(f"- {g['label']} (not the paper's method): routed clean / worst "
                     f"{_pct(clean[ROUTED])} / {_pct(w[ROUTED])}, its trade-off head "
                     f"{_pct(clean[TRADEOFF])} / {_pct(w[TRADEOFF])}, against TRADES at 20 epochs "
                     f"{_pct(w[Method.TRADES])} (McNemar p = {g['p_vs_trades'][ROUTED]:.2g} and "
                     f"{g['p_vs_trades'][TRADEOFF]:.2g}).")
    missing = [label for label, *_ in POINTS if label not in {p.label for p in points}]
    missing += [GUARD[0]] if g is None else []
    if missing:
        lines.append(f"- Not finished yet: {', '.join(missing)}.")
    return lines


def update_doc(doc_path: str, block: list[str]) -> None:
    """Rewrite what lies between RESULTS.md's two scale-trend markers (the rest is prose)."""
    with open(doc_path) as f:
        doc = f.read()
    if DOC_BEGIN not in doc or DOC_END not in doc:
        raise NfiError(f"{doc_path} has no {DOC_BEGIN!r} ... {DOC_END!r} lines to write the "
                       "scale-trend table between")
    head, rest = doc.split(DOC_BEGIN, 1)
    tail = rest.split(DOC_END, 1)[1]
    io_utils.atomic_write_text(doc_path, head + DOC_BEGIN + "\n\n" + "\n".join(block) + "\n\n"
                               + DOC_END + tail)


def write(results_dir: str) -> dict:
    result = build(results_dir)
    points = [Point(**p) for p in result["points"]]
    io_utils.atomic_write_json(os.path.join(results_dir, JSON), result)
    io_utils.atomic_write_text(os.path.join(results_dir, MARKDOWN), "\n".join(markdown(result)) + "\n")
    if points:
        figure(points, os.path.join(results_dir, FIGURE))
    return result


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    docs = [a.split("=", 1)[1] for a in args if a.startswith("--doc=")]
    positional = [a for a in args if not a.startswith("--")]
    if len(positional) > 1 or len(docs) + len(positional) != len(args):
        raise SystemExit("usage: python -m nfi_tf.experiments.scale_report [RESULTS_DIR] [--doc=RESULTS.md]")
    results_dir = positional[0] if positional else os.path.join(os.getcwd(), "results")
    try:
        if not os.path.isdir(os.path.join(results_dir, DATASET)):
            raise NfiError(f"{results_dir} has no {DATASET}/ run directories (give the results dir "
                           "the reproduction wrote, e.g. results)")
        result = write(results_dir)
        for doc in docs:
            update_doc(doc, markdown(result))
    except NfiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
