"""The markdown tables the suites print (and BENCHMARKS.md shows), one function per table."""

from __future__ import annotations

from export.precisions.registry import Precision


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
    for suite in ("train", "serve"):  # the suites that have targets
        for name, t in results.get(suite, {}).get("targets", {}).items():
            lines.append(f"| {name} | {t['measured']:.3f} | {'yes' if t['met'] else 'NO'} |")
    return lines


def flops_table(out: dict) -> list[str]:
    lines = ["| configuration | batch | K | forward MFLOP/image: analytic | TF multiply-adds | TF all ops "
             "| step GFLOP: analytic | TF multiply-adds | x analytic | TF all ops | x analytic |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in out["configs"]:
        if "error" in c:
            lines.append(f"| {c['spec']} | | | error: {c['error'][:80]} | | | | | | | |")
            continue
        f, s = c["forward"], c["step"]
        lines.append(
            f"| {c['label']} | {c['batch']} | {c['attack_steps']} | "
            f"{1e3 * f['analytic_gflop_per_image']:.2f} | {1e3 * f['tf_multiply_add_gflop_per_image']:.2f} | "
            f"{1e3 * f['tf_total_gflop_per_image']:.2f} | {s['analytic_gflop']:.4g} | "
            f"{s['tf_multiply_add_gflop']:.4g} | {s['tf_over_analytic_multiply_add']:.3f} | "
            f"{s['tf_total_gflop']:.4g} | {s['tf_over_analytic_total']:.3f} |")
    return lines


def convolution_algorithms_table(out: dict) -> list[str]:
    lines = ["| one training step | convolutions run | algorithms (oneDNN) | Winograd? |",
             "| --- | ---: | --- | --- |"]
    for p in out["convolution_algorithms"]:
        algs = ", ".join(f"{a} x{n}" for a, n in (p.get("algorithms") or {}).items())
        if "error" in p:
            algs = f"error: {p['error'][:80]}"
        lines.append(f"| {p['label']} | {p.get('convolutions', 0)} | {algs or p.get('note', '')} | "
                     f"{'yes' if p.get('winograd_seen') else 'no'} |")
    return lines


def bf16_table(out: dict) -> list[str]:
    lines = ["| model (interleaved in one process) | training ms/step fp32 | bf16 | bf16 speed-up "
             "| CPU-time speed-up | serving speed-up by batch | routed class agreement |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in out["runs"]:
        if "error" in r:
            lines.append(f"| {r['spec'].get('dataset')} | error: {r['error'][:80]} | | | | | |")
            continue
        t, s = r["train"], r["serve"]
        serve = ", ".join(f"b{b}: {v['fp32_ms']:.2f} -> {v['bf16_ms']:.2f} ms (x{v['bf16_speedup']:.2f})"
                          for b, v in s["batches"].items())
        lines.append(f"| {r['label']} K{t['attack_steps']} | {t['fp32_ms_per_step']:.0f} | "
                     f"{t['bf16_ms_per_step']:.0f} | {t['bf16_speedup']:.2f} | "
                     f"{t['bf16_speedup_cpu_time']:.2f} | {serve} | {100 * s['argmax_agreement']:.1f}% |")
    return lines


def paper_scale_memory_table(out: dict) -> list[str]:
    lines = ["| batch | peak RSS MB | fitted MB | ms/step | GFLOP/s |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    fit = out.get("fit")
    for p in out["points"]:
        if "error" in p:
            lines.append(f"| {p['batch']} | error | | | |")
            continue
        fitted = f"{fit['intercept_mb'] + fit['slope_mb_per_image'] * p['batch']:.0f}" if fit else ""
        lines.append(f"| {p['batch']} | {p['peak_rss_mb']:.0f} | {fitted} | {p['ms_per_step_median']:.0f} | "
                     f"{p['achieved_gflop_per_s']:.1f} |")
    if fit:
        lines.append("")
        lines.append(f"Fit over batches {fit['batches']}: {fit['intercept_mb']:.0f} MB + "
                     f"{fit['slope_mb_per_image']:.1f} MB per image (R^2 {fit['r2']:.3f}); largest "
                     f"batch within {out['memory_limit_gib']} GiB: {out['largest_batch_in_limit']}.")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def paper_scale_time_table(out: dict) -> list[str]:
    r = out["recipe"]
    lines = [f"{r['model']} {r['method']}, {r['epochs']} epochs x {r['train_images']:,} images, "
             f"K={r['attack_steps']}: {r['total_flop'] / 1e18:.2f} EFLOP "
             f"({1e3 * r['forward_gflop_per_image']:.0f} MFLOP per forward pass)", "",
             "| device | precision | TFLOP/s assumed | basis | time |", "| --- | --- | ---: | --- | ---: |"]
    for row in out["time"]:
        lines.append(f"| {row['device']} | {row['precision']} | {row['tflop_per_s_assumed']:.3g} | "
                     f"{row['basis']} | {_duration(row['seconds'])} |")
    return lines


_PRECISIONS = (Precision.FP32, Precision.FP16, Precision.INT8)  # the table's rows, in order


def precisions_table(serve: dict) -> list[str]:
    """The serve bench's fp32, fp16 and int8 default Predictors side by side (`precisions`:
    speed from the run, accuracy from the export's comparison on the test split), the TF
    SavedModel beside them, and why a precision is missing (the fp16 check's refusal)."""
    from export import precisions as registered

    precisions = serve.get("precisions", {})
    thr = next((k for p in precisions.values() for k in p if k.startswith("throughput_b")),
               "throughput_b256_images_per_s")
    batch = thr.split("_")[1]
    # The export's comparisons on the test split (its int8 and fp16 reports) say how many images.
    reports = [serve.get(registered.get(p).report_key) for p in (Precision.INT8, Precision.FP16)]
    examples = next((r["examples"] for r in reports if r and "examples" in r), None)
    lines = [f"| default Predictor | latency b1 median | throughput {batch} | accuracy"
             + (f" ({examples:,} test images)" if examples else "") + " |",
             "| --- | ---: | ---: | ---: |"]
    for precision in _PRECISIONS:
        spec = registered.get(precision)
        file, p = spec.file, precisions.get(precision)
        if p is None:
            why = (serve.get(spec.report_key) or {}).get("error", "not measured")
            lines.append(f"| {precision} `{file}` | not exported: {why[:100]} | | |")
            continue
        ratio = precision != Precision.FP32
        acc = "" if p["accuracy"] is None else f"{100 * p['accuracy']:.2f}%"
        lines.append(f"| {precision} `{file}` | {p['latency_b1_ms_median']:.3f} ms"
                     + (f" (x{p['latency_vs_fp32']:.2f})" if ratio else "")
                     + f" | {p[thr]:,.0f} img/s"
                     + (f" (x{p['throughput_vs_fp32']:.2f})" if ratio else "") + f" | {acc} |")
    tf = serve.get("results", {}).get("tf_saved_model_fp32")
    if tf:
        lines.append(f"| TF SavedModel fp32 | {tf['latency_b1_ms_median']:.3f} ms | "
                     f"{tf[thr]:,.0f} img/s | |")
    return lines


def attack_table(out: dict) -> str:
    """The attack benchmark: each attack's cost on the current code, beside the baseline's when
    one was measured (bench.attack_bench --baseline)."""
    current = out["current"]["attacks"]
    base = {r["attack"]: r for r in out.get("baseline", {}).get("attacks", [])}
    head = "| attack | s / image | forwards | backwards | GFLOP/s | % of peak | % of the model's rate |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if base:
        head += " baseline s / image | baseline % of peak | speed-up |"
        rule += " ---: | ---: | ---: |"
    lines = [head, rule]
    for r in current:
        line = (f"| {r['attack']} | {r['seconds_per_image']:.3f} | {r['images_forwarded']:,} | "
                f"{r['images_backpropagated']:,} | {r['gflop_per_s']:.1f} | "
                f"{100 * r['fraction_of_peak']:.0f}% | {100 * r['fraction_of_model_rate']:.0f}% |")
        if r["attack"] in base:
            b = base[r["attack"]]
            line += (f" {b['seconds_per_image']:.3f} | {100 * b['fraction_of_peak']:.0f}% | "
                     f"x{b['seconds'] / r['seconds']:.2f} |")
        lines.append(line)
    pad = " | | |" if base else ""
    for name in ("current", "baseline"):
        if name in out and "model_alone" in out[name]:
            c = out[name]["model_alone"]
            lines.append(f"| the model alone, {name} (batch {c['batch']}, TF_ENABLE_ONEDNN_OPTS="
                         f"{c['onednn_setting']}): forward | | | | {c['forward_gflop_per_s']:.1f} | "
                         f"{100 * c['forward_fraction_of_peak']:.0f}% | |" + pad)
            lines.append(f"| the model alone, {name}: forward + backward | | | | "
                         f"{c['forward_backward_gflop_per_s']:.1f} | "
                         f"{100 * c['forward_backward_fraction_of_peak']:.0f}% | |" + pad)
    return "\n".join(lines)
