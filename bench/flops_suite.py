"""The flops suite: is the analytic FLOP count (`nfi_tf.flops`, the numerator of every
"GFLOP/s" and "% of peak" figure) the work TensorFlow runs, and does oneDNN run it as such?

1. For each configuration the forward pass and one training step (built as training builds
   it) are traced, not run, and counted by TensorFlow's own per-op FLOP functions
   (bench/tf_flops.py): the multiply-add ops (convolutions and their gradients, matmuls) and
   every op TensorFlow counts, each against the analytic count, as ratios.
2. Which convolution algorithm oneDNN executes, from its verbose log of one real training step
   per backbone in a fresh process (`ONEDNN_VERBOSE=1`): a Winograd or FFT convolution does
   fewer multiply-adds than the direct count, and would make "achieved GFLOP/s" overstate
   the kernels (even above the matmul peak); `winograd_seen` says whether any ran.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

from bench.machine import onednn_ops_expected
from nfi_tf.vocab import Method

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The analytic and TensorFlow's forward counts of the multiply-add layers must agree this
# closely (they are the same formula; anything more is a layer one of them misses).
FORWARD_RTOL = 1e-6


def flops_specs(tiny: bool) -> list[dict]:
    """SmallCNN (TRADES and nfi) and WRN configurations at the train suite's batch and the
    dataset presets' K; the paper's WRN-34-10 too (tracing it costs seconds, running it does not
    happen here)."""
    mnist = {"dataset": "mnist", "backbone": "small_cnn"}
    if tiny:
        timing = {"batch": 4, "attack_steps": 2}
        return [{**mnist, **timing, "method": Method.TRADES}, {**mnist, **timing, "method": Method.NFI},
                {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10, "width": 1,
                 "method": Method.NFI, **timing}]
    wrn = {"dataset": "cifar10", "backbone": "wide_resnet", "batch": 128}
    return [{**mnist, "batch": 128, "method": Method.TRADES}, {**mnist, "batch": 128, "method": Method.NFI},
            {**wrn, "depth": 16, "width": 1, "method": Method.NFI},
            {**wrn, "depth": 34, "width": 10, "method": Method.NFI}]


def count(spec: dict) -> dict:
    """Analytic and TensorFlow FLOP counts of one configuration's forward pass and step."""
    from bench import tf_flops
    from bench.train_bench import DEFAULTS, build_step, label, make_bench_config, set_dtype_policy
    from nfi_tf import data, flops

    spec = {**DEFAULTS, "warmup": 0, "steps": 1, **spec}
    config = make_bench_config(spec)
    set_dtype_policy(config)
    info = data.load_info(config.data, download=False)
    step, classifier = build_step(spec, config, info, steps_per_epoch=1)
    batch, k = config.train.batch_size, config.attack.num_steps
    forward = flops.forward_flops(classifier)
    traced_forward = tf_flops.forward_concrete_function(classifier, batch)
    tf_forward = tf_flops.graph_flops(traced_forward)
    tf_step = tf_flops.graph_flops(tf_flops.step_concrete_function(step, info.image_shape, batch))
    analytic_step = flops.train_step_flops(forward, k, batch)
    g = 1e9
    return {
        "label": label(spec), "spec": spec, "batch": batch, "attack_steps": k,
        "forward": {
            "analytic_gflop_per_image": forward / g,
            "tf_multiply_add_gflop_per_image": tf_forward["multiply_add"] / batch / g,
            "tf_total_gflop_per_image": tf_forward["total"] / batch / g,
            "tf_profiler_gflop_per_image": tf_flops.profiler_float_ops(traced_forward) / batch / g,
            "tf_over_analytic_multiply_add": tf_forward["multiply_add"] / (batch * forward),
            "tf_over_analytic_total": tf_forward["total"] / (batch * forward),
            "tf_by_op_gflop": {op: v / g for op, v in tf_forward["by_op"].items()},
        },
        "step": {
            "analytic_gflop": analytic_step / g,
            "tf_multiply_add_gflop": tf_step["multiply_add"] / g,
            "tf_total_gflop": tf_step["total"] / g,
            "tf_over_analytic_multiply_add": tf_step["multiply_add"] / analytic_step,
            "tf_over_analytic_total": tf_step["total"] / analytic_step,
            "tf_by_op_gflop": {op: v / g for op, v in tf_step["by_op"].items()},
            "tf_uncounted_ops": tf_step["uncounted"],
        },
    }


# === oneDNN's convolution algorithms ===


def parse_onednn_verbose(lines) -> dict:
    """Count the convolutions oneDNN executed, by algorithm and by implementation, from its
    verbose lines (`onednn_verbose,[v1,primitive,]exec,cpu,convolution,IMPL,PROP,...,alg:ALG,...`)."""
    algorithms: collections.Counter = collections.Counter()
    implementations: collections.Counter = collections.Counter()
    for line in lines:
        if not line.startswith("onednn_verbose") or ",exec," not in line:
            continue
        fields = line.strip().split(",")
        try:
            at = fields.index("convolution", fields.index("exec"))
        except ValueError:
            continue
        impl, prop = fields[at + 1], fields[at + 2]
        alg = next((f[len("alg:"):] for f in fields if f.startswith("alg:")), "unknown")
        algorithms[alg] += 1
        implementations[f"{prop}: {impl}"] += 1
    return {"convolutions": sum(algorithms.values()), "algorithms": dict(algorithms),
            "implementations": dict(implementations),
            "winograd_seen": any("winograd" in a for a in algorithms),
            "fft_seen": any("fft" in a for a in algorithms)}


def probe_specs(tiny: bool) -> list[dict]:
    one_step = {"batch": 2, "attack_steps": 1, "warmup": 0, "steps": 1, "method": Method.NFI}
    specs = [{"dataset": "mnist", "backbone": "small_cnn", **one_step},
             {"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10 if tiny else 16,
              "width": 1, **one_step}]
    if not tiny:
        specs.append({"dataset": "cifar10", "backbone": "wide_resnet", "depth": 34, "width": 10,
                      **one_step, "batch": 1})
    return specs


def convolution_algorithms(spec: dict, timeout: float = 900) -> dict:
    """One training step (bench/train_bench.py) in a fresh process with oneDNN's verbose log on."""
    from bench.train_bench import DEFAULTS, label

    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.train_bench", json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout, cwd=_REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"label": label({**DEFAULTS, **spec}), "error": f"timed out after {timeout:.0f} s"}
    result = parse_onednn_verbose(proc.stdout.splitlines())
    result["label"] = label({**DEFAULTS, **spec})
    # A finding, not a failure: oneDNN's gemm runs TensorFlow's matmuls either way, but its
    # convolutions only where TensorFlow's oneDNN ops are on (bench/machine.py says when).
    expected, reason = onednn_ops_expected(env)
    result["onednn_convolutions"] = result["convolutions"] > 0
    result["onednn_ops_expected"], result["onednn_ops_reason"] = expected, reason
    if proc.returncode:
        result["error"] = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    elif not result["convolutions"]:
        result["note"] = f"oneDNN not in use for convolutions ({reason}): TensorFlow's own kernels ran"
    return result


def run_suite(config, results: dict, log=print) -> dict:
    """The flops suite in `python -m bench` (bench/registry.py). Counting traces graphs and runs
    one step per backbone for oneDNN's log: no timing, so no wait for quiet cores."""
    log("flops: analytic vs TensorFlow's count; oneDNN's convolution algorithms")
    return run_flops(config.tiny, log)


def run_flops(tiny: bool, log=print) -> dict:
    """The flops suite (all counting in this process; the oneDNN probes each in their own)."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # many traced functions in one process: retrace warnings
    configs = []
    for spec in flops_specs(tiny):
        try:
            c = count(spec)
        except Exception as e:  # a failed configuration is reported, the suite goes on
            c = {"spec": spec, "error": f"{type(e).__name__}: {e}"}
        configs.append(c)
        if "error" in c:
            log(f"  flops {spec}: ERROR {c['error']}")
        else:
            log(f"  {c['label']} K{c['attack_steps']}: step TF/analytic "
                f"{c['step']['tf_over_analytic_multiply_add']:.4f} (multiply-adds), "
                f"{c['step']['tf_over_analytic_total']:.4f} (all ops); forward "
                f"{c['forward']['tf_over_analytic_multiply_add']:.6f}")
    probes = []
    for spec in probe_specs(tiny):
        p = convolution_algorithms(spec)
        probes.append(p)
        log(f"  oneDNN {p['label']}: {p.get('algorithms')} {p.get('error', '')}")
    forward_ok = [abs(c["forward"]["tf_over_analytic_multiply_add"] - 1) <= FORWARD_RTOL
                  for c in configs if "error" not in c]
    return {
        "configs": configs,
        "convolution_algorithms": probes,
        "winograd_seen": any(p.get("winograd_seen") for p in probes),
        "forward_counts_agree": bool(forward_ok) and all(forward_ok),
        "note": "TensorFlow counts a convolution's backward passes over the input positions "
                "(the dense transposed convolution), the analytic count over the output "
                "positions (the multiply-adds that touch data): equal for 'same' padding "
                "(WideResNet), (H/(H-2))^2 apart for SmallCNN's 'valid' 3x3 convolutions. "
                "TensorFlow also counts bias adds, pooling and element-wise ops; the analytic "
                "count keeps multiply-add layers only",
    }
