"""Training-step benchmark: one configuration per fresh process.

`python -m bench --suite=train_step --spec='<json spec>'` (also `python -m bench.train_bench
'<json spec>'`, the child process the suites run) builds the step the way `nfi_tf.training` does
(`AdversarialTrainer`, SGD with the preset schedule, `tf.function(train_step)` with optional
`jit_compile`), feeds it real batches from `data.TrainStream` (the training input pipeline,
prefetched), times `warmup + steps` steps (each synchronized on its loss, as the training loop
does when it reads the metrics) and prints one JSON line: the median ms/step after warm-up,
images/s, the analytic GFLOP/s, the median process CPU time per step and this process's peak
RSS. A fresh process per configuration
keeps the peak RSS of one configuration from polluting the next, and lets thread settings be
applied before TensorFlow starts its pools.

Spec keys (all optional): dataset, method, backbone, depth, width, batch, attack_steps,
jit_compile, intra_op, inter_op, variant ("compiled" | "naive"), feed ("stream" | "constant"),
mixed_precision, warmup, steps, forward (also time a compiled forward pass), paired (a list of
overrides: time those steps interleaved in this one process, see `run_paired`; overrides may
differ in method, variant, jit_compile or mixed_precision).
"""

from __future__ import annotations

import os
import resource
import statistics
import time

from bench import isolated
from nfi_tf import outputs
from nfi_tf.vocab import Method

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS = {
    "dataset": "mnist", "method": Method.TRADES, "backbone": "small_cnn", "depth": 16, "width": 1,
    "batch": 128, "attack_steps": None, "jit_compile": False, "intra_op": 0, "inter_op": 0,
    "variant": "compiled", "feed": "stream", "mixed_precision": "off", "warmup": 2, "steps": 5,
    "forward": False,
}


def make_bench_config(spec: dict):
    """The run config of a spec: the dataset preset with the benchmark's overrides."""
    from nfi_tf.config import make_config

    model = {"method": spec["method"], "backbone": spec["backbone"]}
    if spec["backbone"] == "wide_resnet":
        model.update(depth=spec["depth"], width=spec["width"])
    overrides = {
        "data": {"train_examples": spec["batch"] * (spec["warmup"] + spec["steps"])},
        "model": model,
        "train": {"batch_size": spec["batch"], "jit_compile": spec["jit_compile"],
                  "mixed_precision": spec["mixed_precision"]},
    }
    if spec["attack_steps"]:
        overrides["attack"] = {"num_steps": spec["attack_steps"]}
    return make_config(spec["dataset"], overrides)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(spec: dict) -> dict:
    spec = {**DEFAULTS, **spec}
    import tensorflow as tf

    if spec["intra_op"]:
        tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op"])
    if spec["inter_op"]:
        tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op"])

    if spec.get("paired"):
        return run_paired(spec)
    from nfi_tf import data, flops
    from nfi_tf.training import configure_runtime

    config = make_bench_config(spec)
    configure_runtime(config)
    info = data.load_info(config.data, download=False)
    stream = data.TrainStream(config.data, config.train.batch_size, config.train.seed, download=False)
    step, classifier = build_step(spec, config, info, stream.steps_per_epoch)

    batches = list(stream.epoch(0)) if spec["feed"] == "constant" else None
    iterator = iter(stream.epoch(0))
    first_images = None
    total = spec["warmup"] + spec["steps"]
    times, cpu = [], []
    for i in range(total):
        # "constant": the batches are already tensors in memory, no input pipeline at all.
        batch = batches[i] if batches is not None else next(iterator)
        first_images = batch[0] if first_images is None else first_images
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = float(step(batch)["loss"])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if not loss == loss:  # NaN: the figures would be meaningless
            raise RuntimeError(f"loss is NaN at benchmark step {i}")

    timed = times[spec["warmup"]:]
    ms = 1e3 * statistics.median(timed)
    forward_per_image = flops.forward_flops(classifier)
    k = config.attack.num_steps
    step_flops = flops.train_step_flops(forward_per_image, k, config.train.batch_size)
    result = {
        "spec": spec,
        "params": int(classifier.count_params()),
        "attack_steps": k,
        "first_step_s": times[0],
        "ms_per_step_median": ms,
        "ms_per_step_min": 1e3 * min(timed),
        "ms_per_step_all": [1e3 * t for t in times],
        "cpu_ms_per_step_median": 1e3 * statistics.median(cpu[spec["warmup"]:]),
        "images_per_s": config.train.batch_size / (ms / 1e3),
        "forward_mflop_per_image": forward_per_image / 1e6,
        "step_gflop": step_flops / 1e9,
        "achieved_gflop_per_s": step_flops / 1e9 / (ms / 1e3),
        "load_average": os.getloadavg(),
    }
    if spec["forward"]:
        result.update(_forward_timing(classifier, first_images, forward_per_image))
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def build_step(spec: dict, config, info, steps_per_epoch: int):
    """(step function, classifier) as `nfi_tf.training` builds them, or the naive step."""
    from nfi_tf.distribute import build_strategy
    from nfi_tf.models import build_classifier
    from nfi_tf.training import AdversarialTrainer, make_optimizer, step_function

    classifier = build_classifier(config.model, info.image_shape, info.num_classes)
    optimizer = make_optimizer(config, steps_per_epoch)
    if spec["variant"] == "naive":
        from bench.naive_step import NaiveTradesStep

        return NaiveTradesStep(classifier, optimizer, config), classifier
    trainer = AdversarialTrainer(classifier, config)
    trainer.compile(optimizer=optimizer, jit_compile=False)
    optimizer.build(classifier.trainable_variables)
    return step_function(trainer, build_strategy("default"), config.train.jit_compile), classifier


def run_paired(spec: dict) -> dict:
    """Several steps (spec["paired"]: overrides of the base spec, e.g. method or variant) in one
    process, timed in interleaved rounds (A B C A B C ...) on the same in-memory batches: on
    shared cores every variant sees the same contention, so their ratios hold even when the
    absolute times drift."""
    from nfi_tf import data, flops
    from nfi_tf.training import configure_runtime

    base = {k: v for k, v in spec.items() if k != "paired"}
    variants = [{**base, **o} for o in spec["paired"]]
    configs = [make_bench_config(v) for v in variants]
    configure_runtime(configs[0])
    info = data.load_info(configs[0].data, download=False)
    stream = data.TrainStream(configs[0].data, configs[0].train.batch_size, configs[0].train.seed,
                              download=False)
    batches = list(stream.epoch(0))
    built = []
    for v, c in zip(variants, configs):
        # Keras' dtype policy is process-global and read when layers are built: each variant
        # (e.g. fp32 and mixed_bfloat16 paired) gets its own before its model is built.
        set_dtype_policy(c)
        built.append(build_step(v, c, info, stream.steps_per_epoch))
    times: list[list[float]] = [[] for _ in variants]
    cpu: list[list[float]] = [[] for _ in variants]
    for i in range(base["warmup"] + base["steps"]):
        for j, (step, _) in enumerate(built):
            set_dtype_policy(configs[j])  # the first call traces: under the variant's own policy
            start, start_cpu = time.perf_counter(), time.process_time()
            loss = float(step(batches[i % len(batches)])["loss"])
            times[j].append(time.perf_counter() - start)
            cpu[j].append(time.process_time() - start_cpu)
            if not loss == loss:
                raise RuntimeError(f"loss is NaN at benchmark step {i} of {variants[j]}")
    out = []
    for v, c, (_, classifier), t, t_cpu in zip(variants, configs, built, times, cpu):
        ms = 1e3 * statistics.median(t[base["warmup"]:])
        forward = flops.forward_flops(classifier)
        step_flops = flops.train_step_flops(forward, c.attack.num_steps, c.train.batch_size)
        out.append({"spec": v, "label": label(v), "attack_steps": c.attack.num_steps,
                    "ms_per_step_median": ms, "ms_per_step_all": [1e3 * x for x in t],
                    "cpu_ms_per_step_median": 1e3 * statistics.median(t_cpu[base["warmup"]:]),
                    "images_per_s": c.train.batch_size / (ms / 1e3),
                    "achieved_gflop_per_s": step_flops / 1e9 / (ms / 1e3)})
    set_dtype_policy(configs[0])
    ref = out[0]["ms_per_step_median"]
    ref_cpu = out[0]["cpu_ms_per_step_median"]
    for r in out:
        r["ratio_to_first"] = r["ms_per_step_median"] / ref
        # Process CPU time counts the work done, less sensitive to other tenants than wall time.
        r["cpu_ratio_to_first"] = r["cpu_ms_per_step_median"] / ref_cpu
    return {"spec": base, "paired": out, "load_average": os.getloadavg(),
            "peak_rss_mb": _peak_rss_mb()}


def set_dtype_policy(config) -> None:
    import keras

    mp = config.train.mixed_precision
    keras.mixed_precision.set_global_policy("float32" if mp == "off" else mp)


def _forward_timing(classifier, x, forward_per_image: int, repeats: int = 10) -> dict:
    """The clean inference-mode forward pass alone: the cost of the one pass a fused step
    could save, and how close a single forward pass gets to the peak."""
    import tensorflow as tf

    forward = tf.function(lambda z: classifier(z, training=False)[outputs.TRADEOFF])
    forward(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - start)
    ms = 1e3 * statistics.median(times)
    return {"forward_ms_median": ms,
            "forward_gflop_per_s": forward_per_image * int(x.shape[0]) / 1e9 / (ms / 1e3)}


def run_suite(config, log=print) -> None:
    """--suite=train_step: one configuration (a StepConfig's JSON spec), printed as RESULT."""
    isolated.print_result(run(config.parsed))


def run_isolated(spec: dict, timeout: float = 900) -> dict:
    """`run(spec)` in a fresh Python process (its own peak RSS and thread pools)."""
    return isolated.run_module("bench.train_bench", spec, timeout, error_spec={**DEFAULTS, **spec})


def run_many(specs: list[dict], isolated: bool, log=print) -> list[dict]:
    """Each spec in its own process (`isolated`), or all in this one (quick, for --tiny)."""
    results = []
    if not isolated:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # one process, many step functions: retrace warnings
    for spec in specs:
        if isolated:
            r = run_isolated(spec)
        else:
            try:
                r = run(spec)
            except Exception as e:  # a failed configuration is reported, the suite goes on
                r = {"spec": {**DEFAULTS, **spec}, "error": f"{type(e).__name__}: {e}"}
        r["isolated_process"] = isolated
        log(describe(r))
        results.append(r)
    return results


def describe(r: dict) -> str:
    if "paired" in r:
        return "\n".join(f"  {p['label']} K{p['attack_steps']}: {p['ms_per_step_median']:.0f} ms/step "
                         f"(x{p['ratio_to_first']:.3f} of the first, "
                         f"CPU time x{p['cpu_ratio_to_first']:.3f}, interleaved)" for p in r["paired"])
    s = r["spec"]
    name = label(s)
    if "error" in r:
        return f"  {name}: ERROR {r['error'].splitlines()[-1] if r['error'] else ''}"
    return (f"  {name} K{r['attack_steps']}: {r['ms_per_step_median']:.0f} ms/step, "
            f"{r['images_per_s']:.1f} img/s, "
            f"{r['achieved_gflop_per_s']:.1f} GFLOP/s, peak RSS {r['peak_rss_mb']:.0f} MB")


def label(s: dict) -> str:
    model = ("SmallCNN" if s["backbone"] == "small_cnn"
             else f"WRN-{s['depth']}-{s['width']}")
    parts = [f"{s['dataset']}/{model}/{s['method']}", f"b{s['batch']}"]
    if s["variant"] != "compiled":
        parts.append(s["variant"])
    if s["jit_compile"]:
        parts.append("jit")
    if s["intra_op"] or s["inter_op"]:
        parts.append(f"threads{s['intra_op']}/{s['inter_op']}")
    if s["feed"] != "stream":
        parts.append(f"feed={s['feed']}")
    if s["mixed_precision"] != "off":
        parts.append(s["mixed_precision"])
    return " ".join(parts)


if __name__ == "__main__":
    from bench.cli import alias

    alias("train_step", spec_argument=True)
