"""The train suite: the compiled TRADES and nfi steps on real batches, and what they are
compared with (each other, the naive eager step, the performance levers, the fp32 peak).

`train_specs` says what runs (bench/train_bench.py runs it); `run_train` aggregates the runs
into the comparisons, the lever summary and the targets BENCHMARKS.md reports against.
"""

from __future__ import annotations

# The performance targets of the training step.
NFI_OVER_TRADES_MAX = 1.10
PEAK_FRACTION_MIN = 0.70


def train_specs(tiny: bool) -> dict[str, list[dict]]:
    """The train suite: `main` (one fresh process each: absolute figures and peak RSS),
    `paired` (steps timed interleaved in one process: the ratios), `levers` (one process each)."""
    if tiny:
        timing = {"batch": 16, "attack_steps": 2, "warmup": 1, "steps": 1}
        mnist = {"dataset": "mnist", "backbone": "small_cnn", **timing}
        cifar = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10, "width": 1, **timing}
        return {
            "main": [{**mnist, "method": "trades", "forward": True}, {**mnist, "method": "nfi"},
                     {**cifar, "method": "trades"}, {**cifar, "method": "nfi"}],
            "paired": [{**mnist, "paired": [{"method": "trades"}, {"method": "nfi"},
                                            {"method": "trades", "variant": "naive"}]}],
            "levers": [],
        }
    timing = {"batch": 128, "warmup": 2, "steps": 5}
    mnist = {"dataset": "mnist", "backbone": "small_cnn", **timing}
    cifar = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 16, "width": 1, **timing}
    short = {"warmup": 1, "steps": 3}
    trio = [{"method": "trades"}, {"method": "nfi"}, {"method": "trades", "variant": "naive"}]
    return {
        "main": [{**mnist, "method": "trades", "forward": True}, {**mnist, "method": "nfi"},
                 {**cifar, "method": "trades", "forward": True}, {**cifar, "method": "nfi"}],
        "paired": [
            {**mnist, "warmup": 1, "steps": 4, "paired": trio},
            {**cifar, "warmup": 1, "steps": 4, "paired": trio},
            {**mnist, **short, "paired": [{"method": "trades"},
                                          {"method": "trades", "jit_compile": True}]},
        ],
        "levers": [
            {**mnist, "method": "trades", "intra_op": 2, "inter_op": 1},
            {**mnist, "method": "trades", "intra_op": 1, "inter_op": 1, **short},
            {**mnist, "method": "trades", "feed": "constant"},
            {**mnist, "method": "trades", "mixed_precision": "mixed_bfloat16", **short},
            {**cifar, "method": "trades", "feed": "constant"},
        ],
    }


def _key(s: dict) -> tuple:
    return (s["dataset"], s["backbone"], s["depth"], s["width"])


def _backbone_name(s: dict) -> str:
    model = "SmallCNN" if s["backbone"] == "small_cnn" else f"WRN-{s['depth']}-{s['width']}"
    return f"{s['dataset']}/{model}"


def run_train(tiny: bool, peak: dict, log=print) -> dict:
    from bench.train_bench import label, run_many

    peak_gflops = peak["gflop_per_s_best"]
    core_peak = peak.get("one_core", peak)["gflop_per_s_best"]
    out: dict = {"peak_gflop_per_s": peak_gflops, "one_core_peak_gflop_per_s": core_peak}
    for group, specs in train_specs(tiny).items():
        log(f"train: {group}")
        out[group] = run_many(specs, isolated=not tiny, log=log)
    for r in out["main"] + out["levers"]:
        r["label"] = label(r["spec"])
        if "error" not in r:
            r["fraction_of_peak"] = r["achieved_gflop_per_s"] / peak_gflops
            # On shared cores the wall clock counts the time other tenants held the cores; the
            # FLOPs per second of CPU time, against one core's peak, is the kernels' own efficiency.
            r["gflop_per_cpu_second"] = r["step_gflop"] / (r["cpu_ms_per_step_median"] / 1e3)
            r["cpu_time_fraction_of_core_peak"] = r["gflop_per_cpu_second"] / core_peak

    ok = lambda rs: [r for r in rs if "error" not in r]
    trades = {_key(r["spec"]): r for r in ok(out["main"]) if r["spec"]["method"] == "trades"}
    nfi = {_key(r["spec"]): r for r in ok(out["main"]) if r["spec"]["method"] == "nfi"}
    comparisons = []
    for key, t in trades.items():
        row = {"backbone": _backbone_name(t["spec"]), "trades_ms_isolated": t["ms_per_step_median"]}
        if key in nfi:
            row["nfi_ms_isolated"] = nfi[key]["ms_per_step_median"]
            row["nfi_over_trades_isolated"] = row["nfi_ms_isolated"] / row["trades_ms_isolated"]
        for pair in ok(out["paired"]):
            if _key(pair["spec"]) != key:
                continue
            first = pair["paired"][0]
            for p in pair["paired"][1:]:
                s = p["spec"]
                if s["method"] == "nfi" and s["variant"] == "compiled" and not s["jit_compile"]:
                    row["nfi_over_trades"] = p["ratio_to_first"]
                    row["nfi_over_trades_cpu_time"] = p["cpu_ratio_to_first"]
                    row["paired_trades_ms"], row["paired_nfi_ms"] = (first["ms_per_step_median"],
                                                                     p["ms_per_step_median"])
                if s["variant"] == "naive":
                    row["naive_ms"] = p["ms_per_step_median"]
                    row["compiled_speedup_over_naive"] = p["ratio_to_first"]
                    row["compiled_speedup_over_naive_cpu_time"] = p["cpu_ratio_to_first"]
        if "forward_ms_median" in t:
            # The most fusing the clean forward passes could save: one inference-mode forward.
            row["clean_forward_ms"] = t["forward_ms_median"]
            row["clean_forward_share_of_step"] = t["forward_ms_median"] / t["ms_per_step_median"]
            row["forward_gflop_per_s"] = t["forward_gflop_per_s"]
        comparisons.append(row)
    out["comparisons"] = comparisons

    levers = []
    for pair in ok(out["paired"]):
        first = pair["paired"][0]
        for p in pair["paired"][1:]:
            if p["spec"]["jit_compile"]:
                levers.append({"lever": p["label"], "ms": p["ms_per_step_median"],
                               "baseline_ms": first["ms_per_step_median"],
                               "speedup": 1 / p["ratio_to_first"], "measured": "interleaved"})
    for r in ok(out["levers"]):
        base = trades.get(_key(r["spec"]))
        if base:
            levers.append({"lever": r["label"], "ms": r["ms_per_step_median"],
                           "baseline_ms": base["ms_per_step_median"],
                           "speedup": base["ms_per_step_median"] / r["ms_per_step_median"],
                           "measured": "separate processes"})
    out["lever_summary"] = levers

    targets = {}
    for row in comparisons:
        if "nfi_over_trades" in row:
            targets[f"nfi_step_le_1.10x_trades[{row['backbone']}]"] = {
                "measured": row["nfi_over_trades"], "met": row["nfi_over_trades"] <= NFI_OVER_TRADES_MAX,
                "cpu_time_ratio": row["nfi_over_trades_cpu_time"]}
    for r in ok(out["main"]):
        targets[f"step_ge_70pct_peak[{r['label']}]"] = {
            "measured": r["fraction_of_peak"], "met": r["fraction_of_peak"] >= PEAK_FRACTION_MIN,
            "cpu_time_fraction_of_core_peak": r["cpu_time_fraction_of_core_peak"]}
    out["targets"] = targets
    return out
