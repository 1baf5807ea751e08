"""bfloat16 vs fp32 on this CPU, interleaved in one process: the training step and serving.

`python -m bench --suite=bf16_step --spec='<json spec>'` (also `python -m bench.bf16 '<json
spec>'`, the bf16 suite's child process) measures, for one model (spec keys as
bench/train_bench.py, plus `serve_batches` and `serve_repeats`):

- the training step with `--mixed_precision=off` and `mixed_bfloat16`, timed in interleaved
  rounds on the same real batches (`train_bench.run_paired`: each variant's model built under
  its own Keras dtype policy), so both see the same contention;
- serving: the compiled inference-mode forward pass of the same weights in fp32 and under
  mixed_bfloat16 (bf16 compute, fp32 variables), interleaved call by call at each batch size
  of `serve_batches`, on real test images, with how often the two agree on the routed class
  (the weights are the model's initial ones: a numerical check, not an accuracy).

bf16 only pays where the CPU multiplies in bf16 natively (`avx512_bf16`, AMX); elsewhere the
casts cost more than the halved memory traffic saves. `precision_support` in the result says
which this CPU has.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import isolated
from nfi_tf.datasets.splits import Split
from nfi_tf.vocab import Method

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRECISIONS = ("off", "mixed_bfloat16")
DEFAULTS = {"serve_batches": [1, 256], "serve_repeats": 20}


def bf16_specs(tiny: bool) -> list[dict]:
    if tiny:
        return [{"dataset": "mnist", "backbone": "small_cnn", "method": Method.NFI, "batch": 16,
                 "attack_steps": 2, "warmup": 1, "steps": 1, "serve_batches": [1, 16],
                 "serve_repeats": 3}]
    timing = {"batch": 128, "warmup": 1, "steps": 4, "serve_batches": [1, 256], "serve_repeats": 20}
    return [{"dataset": "mnist", "backbone": "small_cnn", "method": Method.NFI, **timing},
            {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 16, "width": 1,
             "method": Method.NFI, **timing}]


def run(spec: dict) -> dict:
    from bench import train_bench
    from bench.machine import precision_support

    spec = {**train_bench.DEFAULTS, **DEFAULTS, **spec}
    step_spec = {k: v for k, v in spec.items() if k not in DEFAULTS}
    training = train_bench.run_paired(
        {**step_spec, "paired": [{"mixed_precision": p} for p in PRECISIONS]})
    fp32, bf16 = training["paired"]
    out = {"spec": spec, "label": train_bench.label({**step_spec, "mixed_precision": "off"}),
           "precision_support": precision_support(),
           "train": {"fp32_ms_per_step": fp32["ms_per_step_median"],
                     "bf16_ms_per_step": bf16["ms_per_step_median"],
                     "bf16_speedup": 1 / bf16["ratio_to_first"],
                     "bf16_speedup_cpu_time": 1 / bf16["cpu_ratio_to_first"],
                     "attack_steps": fp32["attack_steps"], "paired": training["paired"]},
           "serve": _serve(step_spec, spec["serve_batches"], spec["serve_repeats"]),
           "load_average": os.getloadavg()}
    return out


def _serve(spec: dict, batches: list[int], repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from bench.train_bench import make_bench_config, set_dtype_policy
    from nfi_tf import data, outputs
    from nfi_tf.models import build_classifier

    configs = [make_bench_config({**spec, "mixed_precision": p}) for p in PRECISIONS]
    info = data.load_info(configs[0].data, download=False)
    models = []
    for c in configs:
        set_dtype_policy(c)  # read when the layers are built
        models.append(build_classifier(c.model, info.image_shape, info.num_classes))
    set_dtype_policy(configs[0])
    models[1].set_weights(models[0].get_weights())  # mixed policies keep fp32 variables
    # The served prediction, the routed logits (every method has them; TRADES' route is fixed).
    forwards = [tf.function(lambda z, m=m: tf.cast(m(z, training=False)[outputs.ROUTED], tf.float32))
                for m in models]
    images, _ = data.load_arrays(configs[0].data, Split.TEST, max(batches))
    x_all = tf.constant(data.uint8_to_float(images))

    out: dict = {"output": outputs.ROUTED, "batches": {}}
    for b in batches:
        x = x_all[:b]
        for f in forwards:  # trace and warm up, outside the timing
            f(x).numpy()
        times: list[list[float]] = [[], []]
        for _ in range(repeats):
            for j, f in enumerate(forwards):
                start = time.perf_counter()
                f(x).numpy()
                times[j].append(time.perf_counter() - start)
        fp32_ms, bf16_ms = (1e3 * statistics.median(t) for t in times)
        out["batches"][str(b)] = {"fp32_ms": fp32_ms, "bf16_ms": bf16_ms,
                                  "bf16_speedup": fp32_ms / bf16_ms,
                                  "fp32_images_per_s": b / (fp32_ms / 1e3),
                                  "bf16_images_per_s": b / (bf16_ms / 1e3)}
    logits = [f(x_all).numpy() for f in forwards]
    out["argmax_agreement"] = float(np.mean(logits[0].argmax(-1) == logits[1].argmax(-1)))
    out["logits_max_abs_difference"] = float(np.max(np.abs(logits[0] - logits[1])))
    out["images"] = int(x_all.shape[0])
    return out


def run_isolated(spec: dict, timeout: float = 1800) -> dict:
    """`run(spec)` in a fresh Python process."""
    return isolated.run_module("bench.bf16", spec, timeout)


def run_suite(config, results: dict, log=print) -> dict:
    """The bf16 suite in `python -m bench` (bench/registry.py)."""
    log("bf16: mixed_bfloat16 vs fp32, interleaved")
    return run_bf16(config.tiny, log)


def run_step(config, log=print) -> None:
    """--suite=bf16_step: one configuration (a StepConfig's JSON spec), printed as RESULT."""
    isolated.print_result(run(config.parsed))


def run_bf16(tiny: bool, log=print) -> dict:
    """The bf16 suite: each model in its own process (all in this one with `tiny`)."""
    runs = []
    for spec in bf16_specs(tiny):
        if tiny:
            try:
                r = run(spec)
            except Exception as e:  # a failed configuration is reported, the suite goes on
                r = {"spec": spec, "error": f"{type(e).__name__}: {e}"}
        else:
            r = run_isolated(spec)
        log(describe(r))
        runs.append(r)
    return {"runs": runs}


def describe(r: dict) -> str:
    if "error" in r:
        return f"  bf16 {r['spec'].get('dataset')}: ERROR {r['error'].splitlines()[-1:]}"
    t = r["train"]
    serve = ", ".join(f"b{b} x{s['bf16_speedup']:.2f}" for b, s in r["serve"]["batches"].items())
    return (f"  {r['label']}: train fp32 {t['fp32_ms_per_step']:.0f} ms, bf16 "
            f"{t['bf16_ms_per_step']:.0f} ms (x{t['bf16_speedup']:.2f}); serve bf16 speed-up {serve}")


if __name__ == "__main__":
    from bench.cli import alias

    alias("bf16_step", spec_argument=True)
