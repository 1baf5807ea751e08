"""Cost of the evaluation's attacks: seconds per image and achieved GFLOP/s vs the fp32 peak.

    python -m bench.attack_bench --model_dir=runs/mnist_quickstart [--examples=32] [--out=FILE]

Runs AutoAttack's standard suite (APGD-CE, APGD-T, FAB-T with 9 targets and 100 iterations each,
Square with 5,000 queries) against the routed model, each attack on all the images (not only
the ones still robust, so each row is that attack's own cost), plus the route-aware attacks.
Every image the model sees is counted at its input: a forward pass costs F FLOPs (nfi_tf.flops,
analytic multiply-adds), a backward pass to the input about F more, so an attack's FLOPs are
F x (images forwarded + images back-propagated) and its achieved GFLOP/s is that over its wall
time. The machine's peak is bench.peak's best float32 matmul. The load average is recorded
before and after each attack: compare only figures taken on idle cores.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import tensorflow as tf

from nfi_tf import data, flops, model_io, outputs
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.config import make_config
from nfi_tf.evaluation import suite
from nfi_tf.evaluation.config import EvalConfig
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.suite.budgets import Budgets
from nfi_tf.evaluation.suite.nfi_targets import target_for

_REPORTED = ("apgd_steps", "apgd_targets", "fab_steps", "fab_targets", "square_queries", "route_steps")


class CountingModel:
    """The classifier with counters on its input: images forwarded and back-propagated."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.forward = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.backward = tf.Variable(0, dtype=tf.int64, trainable=False)

        @tf.custom_gradient
        def tap(x):
            self.forward.assign_add(tf.cast(tf.shape(x)[0], tf.int64))

            def grad(dy):
                self.backward.assign_add(tf.cast(tf.shape(dy)[0], tf.int64))
                return dy

            return tf.identity(x), grad

        self._tap = tap

    def __call__(self, x, training=False):
        return self.classifier(self._tap(x), training=training)

    def reset(self):
        self.forward.assign(0)
        self.backward.assign(0)


def run(model_dir: str, examples: int, log=print) -> dict:
    trained = model_io.load_trained(model_dir)
    if trained.config.model.method != "nfi":
        raise ValueError(f"the attack benchmark needs a routed (nfi) model. Received: "
                         f"method={trained.config.model.method}")
    images, labels = data.load_arrays(trained.config.data, "test", examples)
    x, y = data.uint8_to_float(images), labels
    preset = make_config(trained.config.data.dataset).eval_attack
    cfg = EvalConfig(model_dir=model_dir, batch_size=examples)  # AutoAttack's standard budgets
    budgets = Budgets.of(cfg, preset, trained.info.num_classes)
    threat = ThreatModel("linf", preset.epsilon)
    counting = CountingModel(trained.classifier)
    forward_flops = flops.forward_flops(trained.classifier)
    routed = outputs.ROUTED
    planned = [AttackKey(f, routed, "" if not suite.get(f).routed_variants else "hard")
               for f in suite.autoattack()]
    route = suite.route_aware.SPEC.name
    planned += [AttackKey(route, routed, "all_heads"), AttackKey(route, routed, "benign_route", aux=1)]
    from bench.quiet import wait_for_quiet

    rows = []
    for key in planned:
        attack = suite.get(key.family).build(budgets, threat)
        target = target_for(counting, key)
        quiet = wait_for_quiet(log=log)
        attack.run(x[:2], y[:2], 0, target)  # compile outside the clock
        counting.reset()
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        x_adv = attack.run(x, y, 1, target)
        seconds = time.perf_counter() - start
        fwd, bwd = int(counting.forward.numpy()), int(counting.backward.numpy())
        robust = float(np.mean(np.argmax(trained.classifier(x_adv, training=False)[routed], 1) == y))
        rows.append({"attack": str(key), "seconds": seconds, "seconds_per_image": seconds / examples,
                     "images_forwarded": fwd, "images_backpropagated": bwd,
                     "gflop": forward_flops * (fwd + bwd) / 1e9,
                     "gflop_per_s": forward_flops * (fwd + bwd) / seconds / 1e9,
                     "routed_accuracy": robust, "load_before": load_before,
                     "others_busy_share_before": quiet["busy_share"],
                     "load_after": os.getloadavg()[0]})
        log(f"{str(key):28s} {seconds / examples:7.3f} s/image  {rows[-1]['gflop_per_s']:6.1f} GFLOP/s  "
            f"routed acc {robust:.3f}  load {load_before:.2f}->{rows[-1]['load_after']:.2f}")
    from bench.machine import cpu_model
    from bench.peak import measure_peak

    peak = measure_peak()
    for r in rows:
        r["fraction_of_peak"] = r["gflop_per_s"] / peak["gflop_per_s_best"]
    in_suite = [r for k, r in zip(planned, rows) if k.family in suite.autoattack()]
    return {"model_dir": os.path.abspath(model_dir), "examples": examples,
            "forward_flops_per_image": forward_flops, "peak": peak,
            "budgets": {k: v for k, v in budgets.values.items() if k in _REPORTED},
            "standard_suite_seconds_per_image_all_points": sum(r["seconds_per_image"] for r in in_suite),
            "attacks": rows, "cpu": cpu_model()}


def main(argv: list[str]) -> None:
    args = dict(a.lstrip("-").split("=", 1) for a in argv[1:])
    out = args.get("out", os.path.join("bench", "attack_results.json"))
    result = run(args["model_dir"], int(args.get("examples", 32)))
    from nfi_tf import io_utils

    io_utils.atomic_write_json(out, result)
    print(f"standard suite (each attack on all points): "
          f"{result['standard_suite_seconds_per_image_all_points']:.2f} s/image; written to {out}")


if __name__ == "__main__":
    main(sys.argv)
