"""The train suite: the compiled TRADES and nfi steps on real batches, and what they are
compared with (each other, the naive eager step, the performance levers, the fp32 peak).

`train_specs` says what runs (bench/train_bench.py runs it); `run_train` aggregates the runs
into the comparisons, the lever summary and the targets BENCHMARKS.md reports against.
"""

from __future__ import annotations

from nfi_tf.vocab import Method

# The performance targets of the training step.
NFI_OVER_TRADES_MAX = 1.10
PEAK_FRACTION_MIN = 0.70

TRADES, NFI = {"method": Method.TRADES}, {"method": Method.NFI}
NAIVE = {**TRADES, "variant": "naive"}


def train_specs(tiny: bool) -> dict[str, list[dict]]:
    """The train suite: `main` (one fresh process each: absolute figures and peak RSS),
    `paired` (steps timed interleaved in one process: the ratios), `levers` (one process each)."""
    if tiny:
        timing = {"batch": 16, "attack_steps": 2, "warmup": 1, "steps": 1}
        mnist = {"dataset": "mnist", "backbone": "small_cnn", **timing}
        cifar = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10, "width": 1, **timing}
        return {
            "main": [{**mnist, **TRADES, "forward": True}, {**mnist, **NFI},
                     {**cifar, **TRADES}, {**cifar, **NFI}],
            "paired": [{**mnist, "paired": [TRADES, NFI, NAIVE]}],
            "levers": [],
        }
    timing = {"batch": 128, "warmup": 2, "steps": 5}
    mnist = {"dataset": "mnist", "backbone": "small_cnn", **timing}
    cifar = {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 16, "width": 1, **timing}
    short = {"warmup": 1, "steps": 3}
    trio = [TRADES, NFI, NAIVE]
    return {
        "main": [{**mnist, **TRADES, "forward": True}, {**mnist, **NFI},
                 {**cifar, **TRADES, "forward": True}, {**cifar, **NFI}],
        "paired": [
            {**mnist, "warmup": 1, "steps": 4, "paired": trio},
            {**cifar, "warmup": 1, "steps": 4, "paired": trio},
            {**mnist, **short, "paired": [TRADES, {**TRADES, "jit_compile": True}]},
        ],
        "levers": [
            {**mnist, **TRADES, "intra_op": 2, "inter_op": 1},
            {**mnist, **TRADES, "intra_op": 1, "inter_op": 1, **short},
            {**mnist, **TRADES, "feed": "constant"},
            {**mnist, **TRADES, "mixed_precision": "mixed_bfloat16", **short},
            {**cifar, **TRADES, "feed": "constant"},
        ],
    }


def _key(s: dict) -> tuple:
    return (s["dataset"], s["backbone"], s["depth"], s["width"])


def _backbone_name(s: dict) -> str:
    model = "SmallCNN" if s["backbone"] == "small_cnn" else f"WRN-{s['depth']}-{s['width']}"
    return f"{s['dataset']}/{model}"


def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if "error" not in r]


def run_suite(config, results: dict, log=print) -> dict:
    """The train suite in `python -m bench` (bench/registry.py): it reads the peak suite's."""
    return run_train(config.tiny, results["peak"], log)


def run_train(tiny: bool, peak: dict, log=print) -> dict:
    """Run the train suite's steps and compare them: each with the peak, nfi with TRADES, the
    compiled step with the naive one, each lever with its baseline; the targets judged."""
    from bench.train_bench import run_many

    peak_gflops = peak["gflop_per_s_best"]
    core_peak = peak.get("one_core", peak)["gflop_per_s_best"]
    out: dict = {"peak_gflop_per_s": peak_gflops, "one_core_peak_gflop_per_s": core_peak}
    for group, specs in train_specs(tiny).items():
        log(f"train: {group}")
        out[group] = run_many(specs, isolated=not tiny, log=log)
    _rate(out["main"] + out["levers"], peak_gflops, core_peak)
    trades = {_key(r["spec"]): r for r in _ok(out["main"]) if r["spec"]["method"] == Method.TRADES}
    nfi = {_key(r["spec"]): r for r in _ok(out["main"]) if r["spec"]["method"] == Method.NFI}
    out["comparisons"] = [_comparison(key, t, nfi.get(key), _ok(out["paired"]))
                          for key, t in trades.items()]
    out["lever_summary"] = _levers(trades, _ok(out["paired"]), _ok(out["levers"]))
    out["targets"] = _targets(out["comparisons"], _ok(out["main"]))
    return out


def _rate(runs: list[dict], peak_gflops: float, core_peak: float) -> None:
    """Each run's label and its share of the peak (in place)."""
    from bench.train_bench import label

    for r in runs:
        r["label"] = label(r["spec"])
        if "error" not in r:
            r["fraction_of_peak"] = r["achieved_gflop_per_s"] / peak_gflops
            # On shared cores the wall clock counts the time other tenants held the cores; the
            # FLOPs per second of CPU time, against one core's peak, is the kernels' own efficiency.
            r["gflop_per_cpu_second"] = r["step_gflop"] / (r["cpu_ms_per_step_median"] / 1e3)
            r["cpu_time_fraction_of_core_peak"] = r["gflop_per_cpu_second"] / core_peak


def _comparison(key: tuple, t: dict, nfi: dict | None, paired: list[dict]) -> dict:
    """One backbone's row: nfi over TRADES in separate processes and interleaved, the compiled
    step over the naive one, and the clean forward pass's share of the step."""
    row = {"backbone": _backbone_name(t["spec"]), "trades_ms_isolated": t["ms_per_step_median"]}
    if nfi is not None:
        row["nfi_ms_isolated"] = nfi["ms_per_step_median"]
        row["nfi_over_trades_isolated"] = row["nfi_ms_isolated"] / row["trades_ms_isolated"]
    for pair in paired:
        if _key(pair["spec"]) == key:
            _paired_ratios(row, pair["paired"])
    if "forward_ms_median" in t:
        # The most fusing the clean forward passes could save: one inference-mode forward.
        row["clean_forward_ms"] = t["forward_ms_median"]
        row["clean_forward_share_of_step"] = t["forward_ms_median"] / t["ms_per_step_median"]
        row["forward_gflop_per_s"] = t["forward_gflop_per_s"]
    return row


def _paired_ratios(row: dict, paired: list[dict]) -> None:
    first = paired[0]
    for p in paired[1:]:
        s = p["spec"]
        if s["method"] == Method.NFI and s["variant"] == "compiled" and not s["jit_compile"]:
            row["nfi_over_trades"] = p["ratio_to_first"]
            row["nfi_over_trades_cpu_time"] = p["cpu_ratio_to_first"]
            row["paired_trades_ms"], row["paired_nfi_ms"] = (first["ms_per_step_median"],
                                                             p["ms_per_step_median"])
        if s["variant"] == NAIVE["variant"]:
            row["naive_ms"] = p["ms_per_step_median"]
            row["compiled_speedup_over_naive"] = p["ratio_to_first"]
            row["compiled_speedup_over_naive_cpu_time"] = p["cpu_ratio_to_first"]


def _levers(trades: dict, paired: list[dict], levers: list[dict]) -> list[dict]:
    """Each lever's speed-up: XLA interleaved with its baseline, the others against the TRADES
    step of the same backbone measured in its own process."""
    out = []
    for pair in paired:
        first = pair["paired"][0]
        for p in pair["paired"][1:]:
            if p["spec"]["jit_compile"]:
                out.append({"lever": p["label"], "ms": p["ms_per_step_median"],
                            "baseline_ms": first["ms_per_step_median"],
                            "speedup": 1 / p["ratio_to_first"], "measured": "interleaved"})
    for r in levers:
        base = trades.get(_key(r["spec"]))
        if base:
            out.append({"lever": r["label"], "ms": r["ms_per_step_median"],
                        "baseline_ms": base["ms_per_step_median"],
                        "speedup": base["ms_per_step_median"] / r["ms_per_step_median"],
                        "measured": "separate processes"})
    return out


def _targets(comparisons: list[dict], main: list[dict]) -> dict:
    targets = {}
    for row in comparisons:
        if "nfi_over_trades" in row:
            targets[f"nfi_step_le_1.10x_trades[{row['backbone']}]"] = {
                "measured": row["nfi_over_trades"], "met": row["nfi_over_trades"] <= NFI_OVER_TRADES_MAX,
                "cpu_time_ratio": row["nfi_over_trades_cpu_time"]}
    for r in main:
        targets[f"step_ge_70pct_peak[{r['label']}]"] = {
            "measured": r["fraction_of_peak"], "met": r["fraction_of_peak"] >= PEAK_FRACTION_MIN,
            "cpu_time_fraction_of_core_peak": r["cpu_time_fraction_of_core_peak"]}
    return targets
