"""Serving benchmark on CPU: ONNX Runtime vs the TF SavedModel, fp32, fp16 and int8.

    python -m bench --suite=serve_model --model_dir=DIR [--export_dir=...] [--output=FILE]
    (also python -m bench.serve_bench --model_dir=DIR ...; flags: ServeModelConfig)

Latency: batch 1, median (and p90) of `repeats` timed calls after `warmup` calls.
Throughput: batch `throughput_batch` (256) images per second, from the median of its calls.

The targets (`serve_targets`) are judged on the *defaults*, what a user gets without flags:
`Predictor(model.onnx)` with no session settings, through its validated `run` (the path of
`python -m export.predict`), for fp32 and int8, against the SavedModel's `serving_default`.
The fp16 model is measured the same way beside them (no target: on a CPU fp16 is a size and
GPU option, ORT computes most of it through casts to float32), and `precisions` puts the three
default Predictors side by side with the accuracy each export measured on the whole test split.
The session settings tried besides (graph optimization level, intra/inter op threads,
execution mode, IO binding; raw `session.run`, no request validation) are measured too, so
the JSON records whether any of them beats the defaults, and by how much. Inputs are real test
images. The machine's load average is recorded: on shared cores the figures are only
comparable within one run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from bench.machine import precision_support
from export.config import ExportConfig, SessionConfig
from export.exporter import ONNX_FILE, REPORT_FILE, SAVED_MODEL_DIR, export_model
from export.precisions import Precision
from export.precisions import get as precision_spec
from export.precisions.fp16 import FILE as FP16_FILE
from export.precisions.fp16 import Fp16Error
from export.precisions.int8 import FILE as INT8_FILE
from export.serve import CPU, Predictor
from nfi_tf import data, io_utils
from nfi_tf.config import Config
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import NfiError

Call = Callable[[], object]

# The serving targets (issue "Performance and scale v2"), judged on the default Predictor.
ORT_LATENCY_SPEEDUP_MIN = 2.0  # ONNX Runtime vs SavedModel, batch 1
ORT_THROUGHPUT_SPEEDUP_MIN = 1.5  # ONNX Runtime vs SavedModel, the throughput batch
INT8_SPEEDUP_MIN = 1.5  # int8 vs fp32 ONNX Runtime, at both batch sizes
INT8_ACCURACY_CHANGE_MAX_POINTS = 0.5

# Each precision's ONNX file in the export dir (the order the defaults are measured in).
_FILES = {Precision.FP32: ONNX_FILE, Precision.INT8: INT8_FILE, Precision.FP16: FP16_FILE}
INT8_REPORT = precision_spec(Precision.INT8).report_key  # export_report.json's int8 section


def _timed(call: Call, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return times


def _measure(one: Call, many: Call, batch: int, warmup: int, repeats: int,
             throughput_repeats: int) -> dict[str, float]:
    lat = _timed(one, warmup, repeats)
    thr = _timed(many, 2, throughput_repeats)
    return {
        "latency_b1_ms_median": 1e3 * statistics.median(lat),
        "latency_b1_ms_p90": 1e3 * float(np.percentile(lat, 90)),
        f"throughput_b{batch}_images_per_s": batch / statistics.median(thr),
    }


def _ort_calls(path: str, cfg: SessionConfig, one: np.ndarray, many: np.ndarray,
               io_binding: bool = False) -> tuple[Call, Call, Predictor]:
    """Raw session.run (the validated Predictor path is measured separately)."""
    predictor = Predictor(path, cfg)
    session, name = predictor.session, predictor.input_name
    if not io_binding:
        return (lambda: session.run(None, {name: one}),
                lambda: session.run(None, {name: many}), predictor)

    def bound(x: np.ndarray) -> Call:
        # Input bound once and outputs written into buffers allocated once: no per-call
        # allocation or copy on either side of session.run.
        binding = session.io_binding()
        binding.bind_cpu_input(name, x)
        first = session.run(None, {name: x})
        for out, value in zip(predictor.output_names, first, strict=True):
            buffer = ort.OrtValue.ortvalue_from_numpy(np.empty_like(value))
            binding.bind_ortvalue_output(out, buffer)

        return lambda: session.run_with_iobinding(binding)

    return bound(one), bound(many), predictor


def _ensure_export(model_dir: str, export_dir: str, export_if_missing: bool,
                   test_size: int) -> str | None:
    """Export fp32, int8 and fp16 unless there; returns why fp16 is missing (None: it is there).

    A model whose fp16 graph fails its own check is still measured in fp32 and int8."""
    needed = [os.path.join(export_dir, f)
              for f in (SAVED_MODEL_DIR, ONNX_FILE, INT8_FILE, FP16_FILE)]
    if all(os.path.exists(p) for p in needed):
        return None
    if not export_if_missing:
        raise NfiError(f"no complete export in {export_dir} (needs {needed}): run "
                       f"python -m export.to_onnx --model_dir={model_dir} --quantize "
                       f"--precision=fp16")
    # The int8 and fp16 accuracy changes on the whole test split (the export's default is 1000).
    config = ExportConfig(model_dir=model_dir, output_dir=export_dir, quantize=True,
                          precision=Precision.FP16, quantization_eval_examples=test_size)
    try:
        export_model(config)
    except Fp16Error as e:
        export_model(dataclasses.replace(config, precision=Precision.FP32))
        return str(e)
    return None


def _variants(fp32: str, int8: str, fp16: str) -> dict[str, tuple[str, SessionConfig, bool]]:
    """The session settings tried besides the defaults: name -> (model, session, IO binding)."""
    base = SessionConfig(providers=(CPU,))
    replace = dataclasses.replace
    variants = {
        "ort_fp32": (fp32, base, False),
        "ort_fp32_opt_disable": (fp32, replace(base, graph_optimization="disable"), False),
        "ort_fp32_opt_basic": (fp32, replace(base, graph_optimization="basic"), False),
        "ort_fp32_intra1": (fp32, replace(base, intra_op_threads=1), False),
        "ort_fp32_parallel": (fp32, replace(base, execution_mode="parallel", inter_op_threads=2), False),
        "ort_fp32_no_spin": (fp32, replace(base, allow_spinning=False), False),
        "ort_fp32_iobinding": (fp32, base, True),
        "ort_int8": (int8, base, False),
        "ort_int8_intra1": (int8, replace(base, intra_op_threads=1), False),
        "ort_int8_iobinding": (int8, base, True),
        "ort_fp16": (fp16, base, False),
        "ort_fp16_iobinding": (fp16, base, True),
    }
    return {k: v for k, v in variants.items() if os.path.exists(v[0])}


def _measure_all(export_dir: str, one: np.ndarray, many: np.ndarray, measure) -> tuple[dict, str | None]:
    """Every runtime and setting measured: {name: figures}, and the ONNX Runtime provider."""
    from export.saved_model import LoadedSavedModel

    paths = {p: os.path.join(export_dir, f) for p, f in _FILES.items()}
    results: dict[str, dict] = {}
    saved = LoadedSavedModel(os.path.join(export_dir, SAVED_MODEL_DIR))
    results["tf_saved_model_fp32"] = measure(lambda: saved(one), lambda: saved(many))
    # The defaults, no session settings at all: what the targets are judged on.
    for precision in (Precision.FP32, Precision.INT8, Precision.FP16):
        if os.path.exists(paths[precision]):
            results[f"ort_{precision}_predictor_default"] = _measure_predictor(
                Predictor(paths[precision]), one, many, measure)
    provider = None
    for name, (path, cfg, binding) in _variants(*(paths[p] for p in _FILES)).items():
        call_one, call_many, predictor = _ort_calls(path, cfg, one, many, binding)
        provider = predictor.provider
        results[name] = {"session": dataclasses.asdict(cfg) | {"io_binding": binding},
                         **measure(call_one, call_many)}
    # What request validation (shape, dtype, finiteness, range) costs on top of session.run, and
    # what the Predictor's single-image IO binding saves (the same Predictor without it).
    base = SessionConfig(providers=(CPU,))
    fp32 = paths[Precision.FP32]
    results["ort_fp32_predictor_validated"] = _measure_predictor(Predictor(fp32, base), one, many,
                                                                 measure)
    results["ort_fp32_predictor_no_binding"] = _measure_predictor(
        Predictor(fp32, dataclasses.replace(base, io_binding_batch1=False)), one, many, measure)
    return results, provider


def _export_reports(export_dir: str) -> tuple[dict | None, dict | None]:
    """The export's int8 (quantization) and fp16 comparisons on the test split, when recorded."""
    path = os.path.join(export_dir, REPORT_FILE)
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        exported = json.load(f)
    return exported.get(INT8_REPORT), exported.get(Precision.FP16)


def _environment(provider: str | None, load_before) -> dict:
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "processor": platform.processor(), "ort_provider": provider,
        "tensorflow": tf.__version__,
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "precision_support": precision_support(),
    }


def run_serve_bench(model_dir: str, *, export_dir: str | None = None, repeats: int = 200,
                    warmup: int = 20, throughput_batch: int = 256, throughput_repeats: int = 10,
                    output: str | None = None, export_if_missing: bool = True) -> dict:
    """Benchmark the export of `model_dir`; write and return the results dict."""
    export_dir = export_dir or os.path.join(model_dir, "export")
    config = Config.load(os.path.join(model_dir, "config.json"))
    fp16_missing = _ensure_export(model_dir, export_dir, export_if_missing,
                                  data.load_info(config.data, download=False).test_size)
    images, _ = data.load_arrays(config.data, Split.TEST, throughput_batch)
    if len(images) < throughput_batch:
        raise NfiError(f"the test split has {len(images)} images < batch {throughput_batch}")
    many = images.astype(np.float32) / np.float32(255)
    one = np.ascontiguousarray(many[:1])
    measure = lambda o, m: _measure(o, m, throughput_batch, warmup, repeats, throughput_repeats)
    load_before = os.getloadavg()
    results, provider = _measure_all(export_dir, one, many, measure)
    thr = f"throughput_b{throughput_batch}_images_per_s"
    tf_ref = results["tf_saved_model_fp32"]
    summary = {name: {"latency_speedup_vs_tf": tf_ref["latency_b1_ms_median"]
                      / r["latency_b1_ms_median"],
                      "throughput_speedup_vs_tf": r[thr] / tf_ref[thr]}
               for name, r in results.items() if name != "tf_saved_model_fp32"}
    quantization, fp16_report = _export_reports(export_dir)
    report = {
        "model_dir": os.path.abspath(model_dir), "dataset": config.data.dataset,
        "backbone": config.model.backbone, "method": config.model.method,
        "settings": {"repeats": repeats, "warmup": warmup, "throughput_batch": throughput_batch,
                     "throughput_repeats": throughput_repeats, "inputs": "real test images"},
        "environment": _environment(provider, load_before),
        "results": results,
        "speedup_vs_tf_saved_model": summary,
        INT8_REPORT: quantization,
        Precision.FP16: fp16_report if fp16_missing is None else {"error": fp16_missing},
        "precisions": precisions_side_by_side(results, quantization, fp16_report, thr),
        "note": "TF has no int8 path here (the int8 model is ONNX Runtime QDQ); 0 threads "
                "means one per physical core (export.serve.resolve_session); fp16 on a CPU runs "
                "mostly through casts to float32 (a GPU format, measured here for reference)",
    }
    report["targets"] = serve_targets(report)
    path = output or os.path.join(export_dir, "serve_bench.json")
    io_utils.atomic_write_json(path, report)
    report["output"] = path
    return report


def precisions_side_by_side(results: dict, quantization: dict | None, fp16_report: dict | None,
                            thr: str) -> dict:
    """fp32, fp16 and int8 default Predictors in one table: speed from this run, accuracy from
    the export's comparison on the test split (None when the export did not record it)."""
    accuracy = {Precision.FP32: (quantization or fp16_report or {}).get("fp32_accuracy"),
                Precision.FP16: (fp16_report or {}).get("fp16_accuracy"),
                Precision.INT8: (quantization or {}).get("int8_accuracy")}
    fp32 = results["ort_fp32_predictor_default"]
    out = {}
    for precision in (Precision.FP32, Precision.FP16, Precision.INT8):
        r = results.get(f"ort_{precision}_predictor_default")
        if r is None:  # not exported (the fp16 check refused the graph): said under "fp16"
            continue
        out[precision] = {"latency_b1_ms_median": r["latency_b1_ms_median"], thr: r[thr],
                          "latency_vs_fp32": fp32["latency_b1_ms_median"]
                          / r["latency_b1_ms_median"],
                          "throughput_vs_fp32": r[thr] / fp32[thr],
                          "accuracy": accuracy[precision]}
    return out


def _measure_predictor(predictor: Predictor, one: np.ndarray, many: np.ndarray, measure) -> dict:
    return {"session": dataclasses.asdict(predictor.session_config)
            | {"provider": predictor.provider, "path": "Predictor.run (validated)"},
            **measure(lambda: predictor.run(one), lambda: predictor.run(many))}


def _throughput_key(results: dict) -> str:
    return next(k for k in results["tf_saved_model_fp32"] if k.startswith("throughput"))


def serve_targets(report: dict) -> dict:
    """The issue's serving targets, each judged on the default Predictor (fp32 or int8), with the
    raw default session and the best fp32 setting tried alongside for reference."""
    res = report["results"]
    thr, lat = _throughput_key(res), "latency_b1_ms_median"
    tf_ref = res["tf_saved_model_fp32"]
    fp32, int8 = res["ort_fp32_predictor_default"], res["ort_int8_predictor_default"]
    tried = {n: r for n, r in res.items() if n.startswith("ort_fp32")}
    best_lat = min(tried, key=lambda n: tried[n][lat])
    best_thr = max(tried, key=lambda n: tried[n][thr])
    vnni = precision_support()["int8_dot"]

    def target(measured: float, minimum: float, **extra) -> dict:
        return {"measured": measured, "met": measured >= minimum, "minimum": minimum,
                "session": "default Predictor", **extra}

    out = {
        "ort_latency_b1_ge_2x_tf": target(
            tf_ref[lat] / fp32[lat], ORT_LATENCY_SPEEDUP_MIN,
            raw_default_session=tf_ref[lat] / res["ort_fp32"][lat],
            best_setting=best_lat, best_setting_measured=tf_ref[lat] / tried[best_lat][lat]),
        "ort_throughput_ge_1.5x_tf": target(
            fp32[thr] / tf_ref[thr], ORT_THROUGHPUT_SPEEDUP_MIN,
            batch=report["settings"]["throughput_batch"],
            raw_default_session=res["ort_fp32"][thr] / tf_ref[thr],
            best_setting=best_thr, best_setting_measured=tried[best_thr][thr] / tf_ref[thr]),
        "int8_throughput_ge_1.5x_ort_fp32": target(
            int8[thr] / fp32[thr], INT8_SPEEDUP_MIN, int8_dot_extensions=vnni,
            raw_default_session=res["ort_int8"][thr] / res["ort_fp32"][thr]),
        "int8_latency_b1_ge_1.5x_ort_fp32": target(
            fp32[lat] / int8[lat], INT8_SPEEDUP_MIN, int8_dot_extensions=vnni,
            raw_default_session=res["ort_fp32"][lat] / res["ort_int8"][lat]),
    }
    q = report.get(INT8_REPORT)
    if q:
        change = 100 * abs(q["int8_accuracy"] - q["fp32_accuracy"])
        out["int8_accuracy_change_lt_0.5_points"] = {
            "measured": change, "met": change < INT8_ACCURACY_CHANGE_MAX_POINTS,
            "examples": q.get("examples")}
    return out


def format_report(report: dict) -> list[str]:
    thr = next(k for k in report["results"]["ort_fp32"] if k.startswith("throughput"))
    lines = [f"{'runtime':32s} {'latency b1 median':>18s} {'p90':>9s} {thr:>34s}"]
    for name, r in report["results"].items():
        lines.append(f"{name:32s} {r['latency_b1_ms_median']:15.3f} ms "
                     f"{r['latency_b1_ms_p90']:6.3f} ms {r[thr]:28.0f} img/s")
    env = report["environment"]
    for precision, p in report.get("precisions", {}).items():
        acc = "" if p["accuracy"] is None else f", accuracy {100 * p['accuracy']:.2f}%"
        lines.append(f"{precision}: latency x{p['latency_vs_fp32']:.2f}, throughput "
                     f"x{p['throughput_vs_fp32']:.2f} vs fp32 (default Predictor){acc}")
    for name, t in report["targets"].items():
        lines.append(f"target {name}: {t['measured']:.3f} ({'met' if t['met'] else 'NOT met'})")
    if not env["precision_support"]["int8_dot"]:
        lines.append("this CPU has no int8 dot-product instructions (VNNI/AMX): int8 runs "
                     "through widening multiplies, expect little gain")
    lines.append(f"load average before: {env['load_average_before'][0]:.2f} (cpu count "
                 f"{env['cpu_count']}); written to {report['output']}")
    return lines


def run_suite(config, log=print) -> dict:
    """--suite=serve_model: a ServeModelConfig's export benchmarked, its report printed."""
    report = run_serve_bench(config.model_dir, export_dir=config.export_dir, repeats=config.repeats,
                             warmup=config.warmup, throughput_batch=config.throughput_batch,
                             throughput_repeats=config.throughput_repeats, output=config.output)
    for line in format_report(report):
        log(line)
    return report


if __name__ == "__main__":
    from bench.cli import alias

    alias("serve_model")
