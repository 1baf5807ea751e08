"""The benchmark suite: `python -m bench --suite=train|serve|peak|scaling|all [--tiny] [--out=...]`.

Suites (comma-separated lists work too, e.g. `--suite=peak,train`):
  peak     this machine's fp32 peak, a large numpy matmul (bench/peak.py)
  train    the compiled TRADES and nfi steps, batch 128, SmallCNN/MNIST and WRN-16-1/CIFAR-10
           on real batches: ms/step, images/s, peak RSS, GFLOP/s against the peak; the naive
           eager baseline; the performance levers (XLA, threads, input feed, bfloat16)
  scaling  ms/step vs batch 32..512 and PGD steps 1..40, peak RSS vs batch, PNG plot
  serve    ONNX Runtime vs TF SavedModel serving (bench/serve_bench.py) on a SmallCNN trained
           here for a few minutes (or the model dir given by --serve_model_dir)
Prints the tables and writes one JSON file. Every training configuration runs in a fresh
process (its own peak RSS); `--tiny` shrinks everything (batch 16, 2 PGD steps, one timed
step, all in this process) so CI can check that the suite runs and its JSON is complete.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys

from absl import app, flags

SUITES = ("peak", "train", "scaling", "serve")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The performance targets BENCHMARKS.md reports against.
NFI_OVER_TRADES_MAX = 1.10
PEAK_FRACTION_MIN = 0.70
ORT_LATENCY_SPEEDUP_MIN = 2.0
ORT_THROUGHPUT_SPEEDUP_MIN = 1.5
INT8_SPEEDUP_MIN = 1.5
INT8_ACCURACY_CHANGE_MAX_POINTS = 0.5


def suites_of(value: str) -> list[str]:
    from nfi_tf.errors import NfiError

    names = [s.strip() for s in value.split(",") if s.strip()]
    if "all" in names:
        return list(SUITES)
    unknown = sorted(set(names) - set(SUITES))
    if unknown or not names:
        raise NfiError(f"--suite must be one of {SUITES + ('all',)} or a comma-separated list. "
                       f"Received: suite={value!r}")
    return [s for s in SUITES if s in names]


# === Machine ===


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import numpy as np

    info = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            flags_line = next((ln for ln in f if ln.startswith("flags")), "")
        info["vector_extensions"] = sorted({w for w in flags_line.split()
                                            if w.startswith(("avx", "fma", "amx"))})
    except OSError:
        pass
    for module in ("tensorflow", "keras", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


# === Suites ===


def _peak_process(n: str, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    proc = subprocess.run([sys.executable, "-m", "bench.peak", n], capture_output=True, text=True,
                          cwd=_REPO, check=True, env=env)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def run_peak(tiny: bool) -> dict:
    """The all-core matmul, and one core's times the core count: on shared cores a one-thread
    run is less often interrupted than a two-thread BLAS that waits for its slowest thread.
    `gflop_per_s_best` (the denominator of "% of peak") is the larger of the two."""
    n = "2048" if tiny else "4096"
    all_cores = _peak_process(n, None)
    one_core = _peak_process(n, 1)
    cores = os.cpu_count() or 1
    return {"all_cores": all_cores, "one_core": one_core,
            "one_core_times_cores_gflop_per_s": one_core["gflop_per_s_best"] * cores,
            "gflop_per_s_best": max(all_cores["gflop_per_s_best"],
                                    one_core["gflop_per_s_best"] * cores),
            "gflop_per_s_median": all_cores["gflop_per_s_median"]}


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


def _serve_model(work_dir: str, tiny: bool, log=print) -> str:
    model_dir = os.path.join(work_dir, "serve_model_tiny" if tiny else "serve_model")
    if os.path.exists(os.path.join(model_dir, "model.keras")):
        log(f"serve: reusing the trained model in {model_dir}")
        return model_dir
    n, k = ("512", "2") if tiny else ("12800", "10")
    log(f"serve: training an nfi SmallCNN on {n} real MNIST images (1 epoch, K={k}) -> {model_dir}")
    subprocess.run([sys.executable, "-m", "nfi_tf.train", f"--model_dir={model_dir}",
                    "--dataset=mnist", "--method=nfi", f"--train_examples={n}", "--epochs=1",
                    f"--attack_steps={k}", "--step_size=0.04", "--eval_examples=200",
                    "--eval_attack_steps=2", "--learning_rate=0.05"],
                   cwd=_REPO, check=True, capture_output=True, text=True)
    return model_dir


def run_serve(work_dir: str, model_dir: str | None, tiny: bool, log=print) -> dict:
    model_dir = model_dir or _serve_model(work_dir, tiny, log)
    output = os.path.join(work_dir, "serve_bench_tiny.json" if tiny else "serve_bench.json")
    args = [f"--model_dir={model_dir}", f"--output={output}"]
    if tiny:
        args += ["--repeats=10", "--warmup=2", "--throughput_repeats=2", "--throughput_batch=32"]
    log("serve: python -m bench.serve_bench " + " ".join(args))
    proc = subprocess.run([sys.executable, "-m", "bench.serve_bench", *args], cwd=_REPO,
                          capture_output=True, text=True)
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    for line in proc.stdout.splitlines():
        log("  " + line)
    with open(output) as f:
        report = json.load(f)
    export_report = os.path.join(model_dir, "export", "export_report.json")
    if os.path.exists(export_report):
        with open(export_report) as f:
            report["quantization"] = json.load(f).get("quantization")
    report["targets"] = serve_targets(report)
    return report


def serve_targets(report: dict) -> dict:
    res = report["results"]
    thr = next(k for k in res["ort_fp32"] if k.startswith("throughput"))
    tf_ref, fp32 = res["tf_saved_model_fp32"], res["ort_fp32"]
    best_fp32 = min((r for n, r in res.items() if n.startswith("ort_fp32") and "predictor" not in n),
                    key=lambda r: r["latency_b1_ms_median"])
    best_fp32_thr = max((r for n, r in res.items() if n.startswith("ort_fp32") and "predictor" not in n),
                        key=lambda r: r[thr])
    lat = tf_ref["latency_b1_ms_median"] / best_fp32["latency_b1_ms_median"]
    tput = best_fp32_thr[thr] / tf_ref[thr]
    int8_tput = res["ort_int8"][thr] / fp32[thr]
    int8_lat = fp32["latency_b1_ms_median"] / res["ort_int8"]["latency_b1_ms_median"]
    out = {
        "ort_latency_b1_ge_2x_tf": {"measured": lat, "met": lat >= ORT_LATENCY_SPEEDUP_MIN},
        "ort_throughput_ge_1.5x_tf": {"measured": tput, "met": tput >= ORT_THROUGHPUT_SPEEDUP_MIN},
        "int8_throughput_ge_1.5x_ort_fp32": {"measured": int8_tput,
                                             "met": int8_tput >= INT8_SPEEDUP_MIN},
        "int8_latency_b1_ge_1.5x_ort_fp32": {"measured": int8_lat, "met": int8_lat >= INT8_SPEEDUP_MIN},
    }
    q = report.get("quantization")
    if q:
        change = 100 * abs(q["int8_accuracy"] - q["fp32_accuracy"])
        out["int8_accuracy_change_lt_0.5_points"] = {
            "measured": change, "met": change < INT8_ACCURACY_CHANGE_MAX_POINTS,
            "examples": q.get("examples")}
    return out


# === Tables ===


def train_table(out: dict) -> list[str]:
    lines = ["| configuration | PGD steps | ms/step | images/s | peak RSS MB | GFLOP/step | GFLOP/s "
             "| % of peak |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in out["main"] + out["levers"]:
        if "error" in r:
            lines.append(f"| {r['label']} | | error: {r['error'].splitlines()[-1][:80]} | | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['attack_steps']} | {r['ms_per_step_median']:.0f} | "
                     f"{r['images_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['step_gflop']:.1f} | "
                     f"{r['achieved_gflop_per_s']:.1f} | {100 * r['fraction_of_peak']:.0f}% |")
    return lines


def paired_table(out: dict) -> list[str]:
    lines = ["| interleaved in one process | PGD steps | ms/step | x of the first | CPU ms/step "
             "| CPU time x of the first |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for pair in out["paired"]:
        if "error" in pair:
            lines.append(f"| {pair['spec'].get('dataset')} | | error | | | |")
            continue
        for p in pair["paired"]:
            lines.append(f"| {p['label']} | {p['attack_steps']} | {p['ms_per_step_median']:.0f} | "
                         f"{p['ratio_to_first']:.3f} | {p['cpu_ms_per_step_median']:.0f} | "
                         f"{p['cpu_ratio_to_first']:.3f} |")
    return lines


def scaling_table(out: dict) -> list[str]:
    lines = ["| batch | PGD steps | ms/step | images/s | GFLOP/s | peak RSS MB |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in out["batch"] + out["attack_steps"]:
        if "error" in p:
            lines.append(f"| {p['batch']} | {p['attack_steps']} | error | | | |")
            continue
        lines.append(f"| {p['batch']} | {p['attack_steps']} | {p['ms_per_step_median']:.0f} | "
                     f"{p['images_per_s']:.1f} | {p['achieved_gflop_per_s']:.1f} | "
                     f"{p['peak_rss_mb']:.0f} |")
    return lines


def targets_table(results: dict) -> list[str]:
    lines = ["| target | measured | met |", "| --- | ---: | --- |"]
    for suite in ("train", "serve"):
        for name, t in results.get(suite, {}).get("targets", {}).items():
            lines.append(f"| {name} | {t['measured']:.3f} | {'yes' if t['met'] else 'NO'} |")
    return lines


# === Entry point ===


def run_suites(suites: list[str], tiny: bool, out_path: str, plot_path: str, work_dir: str,
               serve_model_dir: str | None, log=print, max_busy: float = 0.25,
               quiet_timeout: float = 600.0) -> dict:
    from bench import quiet
    from nfi_tf import io_utils

    def settle(name: str) -> None:
        # --tiny (CI) checks that the suite runs, not speed: record the load, never wait.
        s = quiet.sample() if tiny else quiet.wait_for_quiet(max_busy, quiet_timeout, log=log)
        results["meta"].setdefault("quiet_checks", {})[name] = s

    os.makedirs(work_dir, exist_ok=True)
    results: dict = {
        "meta": {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "command": "python -m bench " + " ".join(sys.argv[1:]), "suites": suites,
                 "tiny": tiny, "machine": machine(), "load_average_start": os.getloadavg(),
                 "note": "load averages are recorded because the cores may be shared: figures "
                         "are comparable within one run, not across machines or runs"},
    }
    if "peak" in suites or "train" in suites:
        settle("peak")
        log("peak: numpy float32 matmul")
        results["peak"] = run_peak(tiny)
        log(f"  best {results['peak']['gflop_per_s_best']:.1f} GFLOP/s "
            f"(median {results['peak']['gflop_per_s_median']:.1f})")
    if "train" in suites:
        settle("train")
        results["train"] = run_train(tiny, results["peak"], log)
        for line in train_table(results["train"]) + paired_table(results["train"]):
            log(line)
    if "scaling" in suites:
        from bench.scaling import run_scaling

        settle("scaling")
        results["scaling"] = run_scaling(tiny, isolated=not tiny, plot_path=plot_path, log=log)
        for line in scaling_table(results["scaling"]):
            log(line)
    if "serve" in suites:
        settle("serve")
        results["serve"] = run_serve(work_dir, serve_model_dir, tiny, log)
    results["meta"]["load_average_end"] = os.getloadavg()
    for line in targets_table(results):
        log(line)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    io_utils.atomic_write_json(out_path, results)
    log(f"written to {out_path}")
    return results


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    plot_path = f.plot or os.path.join("bench", "scaling_tiny.png" if f.tiny else "scaling.png")
    run_suites(suites_of(f.suite), f.tiny, f.out, plot_path, f.work_dir, f.serve_model_dir,
               log=lambda s: print(s, flush=True), max_busy=f.max_busy, quiet_timeout=f.quiet_timeout)


if __name__ == "__main__":
    from flags import bench as bench_flags
    from nfi_tf.commands import entry as cli

    bench_flags.define_flags()
    cli.run_command("bench", main)
