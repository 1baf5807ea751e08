"""The paper_scale suite: what the paper's CIFAR-10 run would cost, from measurements here.

Memory: the peak RSS of a WRN-34-10 nfi training step (K=10) at batches 4, 8 and 16, each in a
fresh process (`bench.train_bench`: its own `ru_maxrss`), fitted linearly (RSS = a + b * batch:
a is TensorFlow, the model, its optimizer state and the input pipeline; b the activations a
batch element keeps for the backward pass), extrapolated to the largest batch whose step fits
in 24 GiB, and checked against one more measured batch (32) that the fit did not see. (Batches
1, 2, 4 were tried first: below ~8 images TensorFlow's allocator pools, not the activations, set
the peak, and that fit missed batch 8 by 19%.)

Time: the paper's recipe (WRN-34-10, 200 epochs of the 50,000 CIFAR-10 training images, K=10
PGD steps) costs epochs * images * F * (2K + 7) FLOPs (`nfi_tf.flops`, F the analytic forward
FLOPs per image; checked against TensorFlow's own count by the flops suite). Divided by the
GFLOP/s the measured WRN-34-10 steps achieved here, it is this CPU's time; divided by a GPU's
published peak times an assumed achieved fraction (`ACHIEVED_FRACTION`, stated in the table),
that GPU's. Per-epoch evaluation and data loading are not counted.

`--tiny` measures WRN-10-1 at batches 4, 16, 64 (check 128) instead, so that CI sees the fit
and the table built in about a minute; the recipe's FLOPs are WRN-34-10's either way.
"""

from __future__ import annotations

import math

from export.precisions.registry import Precision
from nfi_tf.vocab import Method

FP32, BF16 = Precision.FP32, "bf16"  # the arithmetic a device's peak is quoted in
GIB = 1024**3
MEMORY_LIMIT_GIB = 24
RECIPE = {"dataset": "cifar10", "model": "WRN-34-10", "depth": 34, "width": 10, "epochs": 200,
          "train_images": 50_000, "attack_steps": 10, "method": Method.NFI}
# Published dense peaks (vendor datasheets), TFLOP/s; bf16 is the tensor-core rate.
GPUS = (
    ("NVIDIA V100 SXM2", FP32, 15.7),
    ("NVIDIA A100", FP32, 19.5),
    ("NVIDIA A100", BF16, 312.0),
    ("NVIDIA H100 SXM", FP32, 67.0),
    ("NVIDIA H100 SXM", BF16, 989.0),
)
# The share of peak a convolutional training step sustains on a GPU: an assumption (large
# convolutions run at 50-70% of peak in cuDNN; the PGD loop's small element-wise ops and the
# batch norms pull the average down), stated next to every GPU figure.
ACHIEVED_FRACTION = 0.5


def memory_specs(tiny: bool) -> tuple[list[dict], dict]:
    """(the batches fitted, the batch that checks the fit), as train_bench specs."""
    if tiny:
        base = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10, "width": 1,
                "method": Method.NFI, "attack_steps": 1, "warmup": 1, "steps": 1}
        fit, check = (4, 16, 64), 128
    else:
        base = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": RECIPE["depth"],
                "width": RECIPE["width"], "method": RECIPE["method"],
                "attack_steps": RECIPE["attack_steps"], "warmup": 1, "steps": 1}
        fit, check = (4, 8, 16), 32
    return [{**base, "batch": b} for b in fit], {**base, "batch": check}


def fit_line(xs: list[float], ys: list[float]) -> dict:
    """Least-squares y = intercept + slope * x, and R^2."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        raise ValueError(f"need at least two distinct x to fit a line. Received: xs={xs}")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return {"intercept": intercept, "slope": slope,
            "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


def largest_batch(fit: dict, limit_mb: float) -> int | None:
    """The largest batch whose fitted peak RSS stays within `limit_mb` (None: no growth fitted)."""
    if fit["slope"] <= 0:
        return None
    return max(0, math.floor((limit_mb - fit["intercept"]) / fit["slope"]))


def recipe_flops(forward_flops_per_image: int, recipe: dict = RECIPE) -> int:
    """FLOPs of the whole recipe: epochs * images * F * (2K + 7) (batch size does not enter)."""
    from nfi_tf.flops import train_step_flops

    per_image = train_step_flops(forward_flops_per_image, recipe["attack_steps"], 1)
    return recipe["epochs"] * recipe["train_images"] * per_image


def recipe_forward_flops() -> int:
    """F of the recipe's model (built, not run)."""
    from nfi_tf.config import make_config
    from nfi_tf.flops import forward_flops
    from nfi_tf.models import build_classifier

    config = make_config("cifar10", {"model": {"method": RECIPE["method"], "backbone": "wide_resnet",
                                               "depth": RECIPE["depth"], "width": RECIPE["width"]}})
    return forward_flops(build_classifier(config.model, (32, 32, 3), 10))


def time_table(total_flops: float, cpu_gflop_per_s: float | None, cpu_label: str,
               peak_gflop_per_s: float | None = None) -> list[dict]:
    """Rows {device, precision, tflop_per_s_assumed, basis, seconds, days} for the recipe."""
    rows = []
    if cpu_gflop_per_s:
        rows.append({"device": "this CPU", "precision": FP32,
                     "tflop_per_s_assumed": cpu_gflop_per_s / 1e3,
                     "basis": f"measured: {cpu_label}"})
    if peak_gflop_per_s:
        rows.append({"device": "this CPU", "precision": FP32,
                     "tflop_per_s_assumed": peak_gflop_per_s / 1e3,
                     "basis": "at the measured matmul peak (a lower bound on the time)"})
    for name, precision, peak in GPUS:
        rows.append({"device": name, "precision": precision,
                     "tflop_per_s_assumed": peak * ACHIEVED_FRACTION,
                     "basis": f"{ACHIEVED_FRACTION:.0%} of the published {peak:g} TFLOP/s peak"})
    for r in rows:
        r["seconds"] = total_flops / (r["tflop_per_s_assumed"] * 1e12)
        r["days"] = r["seconds"] / 86400
    return rows


def run_suite(config, results: dict, log=print) -> dict:
    """The paper_scale suite in `python -m bench` (bench/registry.py); the peak's, when it ran,
    gives the time at the matmul peak."""
    log("paper_scale: WRN peak RSS vs batch, the paper's recipe's time")
    return run_paper_scale(config.tiny, results.get("peak"), log)


def run_paper_scale(tiny: bool, peak: dict | None = None, log=print) -> dict:
    from bench.train_bench import label, run_isolated

    fit_specs, check_spec = memory_specs(tiny)
    points = []
    for spec in [*fit_specs, check_spec]:
        r = run_isolated(spec, timeout=3600)
        point = {"batch": spec["batch"], "label": label({**r["spec"]}) if "spec" in r else None}
        if "error" in r:
            point["error"] = r["error"]
        else:
            point.update({k: r[k] for k in ("peak_rss_mb", "ms_per_step_median", "step_gflop",
                                            "achieved_gflop_per_s", "attack_steps", "load_average")})
        log(f"  paper_scale batch {spec['batch']}: " + (
            f"ERROR {point['error'].splitlines()[-1:]}" if "error" in point else
            f"peak RSS {point['peak_rss_mb']:.0f} MB, {point['ms_per_step_median']:.0f} ms/step, "
            f"{point['achieved_gflop_per_s']:.1f} GFLOP/s"))
        points.append(point)
    out: dict = {"tiny": tiny, "model_measured": points[0]["label"], "points": points,
                 "memory_limit_gib": MEMORY_LIMIT_GIB, "recipe": dict(RECIPE),
                 "achieved_fraction_assumed": ACHIEVED_FRACTION}
    fitted = [p for p in points[:-1] if "error" not in p]
    if len(fitted) >= 2:
        fit = fit_line([p["batch"] for p in fitted], [p["peak_rss_mb"] for p in fitted])
        out["fit"] = {"intercept_mb": fit["intercept"], "slope_mb_per_image": fit["slope"],
                      "r2": fit["r2"], "batches": [p["batch"] for p in fitted]}
        out["largest_batch_in_limit"] = largest_batch(fit, MEMORY_LIMIT_GIB * GIB / 2**20)
        check = points[-1]
        if "error" not in check:
            predicted = fit["intercept"] + fit["slope"] * check["batch"]
            out["check"] = {"batch": check["batch"], "predicted_mb": predicted,
                            "measured_mb": check["peak_rss_mb"],
                            "relative_error": (check["peak_rss_mb"] - predicted) / predicted}
    forward = recipe_forward_flops()
    total = recipe_flops(forward)
    out["recipe"].update(forward_gflop_per_image=forward / 1e9, total_flop=total)
    ok = [p for p in points if "error" not in p]
    best = max(ok, key=lambda p: p["achieved_gflop_per_s"]) if ok else None
    out["cpu_gflop_per_s"] = best["achieved_gflop_per_s"] if best else None
    out["time"] = time_table(total, out["cpu_gflop_per_s"],
                             f"{best['label']}, {best['achieved_gflop_per_s']:.1f} GFLOP/s" if best
                             else "", (peak or {}).get("gflop_per_s_best"))
    return out
