"""One attack's cost, measured in a process of its own (bench.attack_bench runs this file).

    python bench/attack_child.py MODEL_DIR EXAMPLES KEY [BATCH]

prints one JSON line: seconds, images forwarded and back-propagated at the model's input, the
routed accuracy after the attack. It is run as a file, not as a module, so that the `nfi_tf` it
imports is whichever tree is first on PYTHONPATH: bench.attack_bench runs it once against the
current code and once against a git worktree of a baseline commit, attack by attack, and the two
are measured in the same conditions. It therefore only uses interfaces both trees have (the
attack registry's `build(...).run(x, y, seed, target)`, `Budgets.of`, the typed splits) and
builds a key's target as the evaluation does (`_target`), the older way on a tree from before
the one target type.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

import numpy as np


def _counting(classifier, tf):
    """The classifier with counters on its input: images forwarded and back-propagated."""
    forward = tf.Variable(0, dtype=tf.int64, trainable=False)
    backward = tf.Variable(0, dtype=tf.int64, trainable=False)

    @tf.custom_gradient
    def tap(x):
        forward.assign_add(tf.cast(tf.shape(x)[0], tf.int64))

        def grad(dy):
            backward.assign_add(tf.cast(tf.shape(dy)[0], tf.int64))
            return dy

        return tf.identity(x), grad

    def model(x, training=False):
        return classifier(tap(x), training=training)

    def reset():
        forward.assign(0)
        backward.assign(0)

    return model, reset, lambda: (int(forward.numpy()), int(backward.numpy()))


def measure(model_dir: str, examples: int, key_text: str, batch_size: int | None = None) -> dict:
    # nfi_tf before TensorFlow: the tree's own choice of CPU kernels, if it makes one (an
    # import_module call, so that sorting the imports below cannot move it after them).
    importlib.import_module("nfi_tf")
    import tensorflow as tf

    from nfi_tf import data, model_io, outputs
    from nfi_tf.attacks.threat import ThreatModel
    from nfi_tf.config import make_config
    from nfi_tf.datasets.splits import Split
    from nfi_tf.evaluation import suite
    from nfi_tf.evaluation.config import EvalConfig
    from nfi_tf.evaluation.keys import AttackKey
    from nfi_tf.evaluation.suite.budgets import Budgets

    trained = model_io.load_trained(model_dir)
    images, labels = data.load_arrays(trained.config.data, Split.TEST, examples)
    x, y = data.uint8_to_float(images), labels
    preset = make_config(trained.config.data.dataset).eval_attack
    cfg = EvalConfig(model_dir=model_dir, batch_size=batch_size or examples)  # standard budgets
    budgets = Budgets.of(cfg, preset, trained.info.num_classes)
    threat = ThreatModel(cfg.norm, preset.epsilon)  # the evaluation's default threat model
    kernels = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    if key_text == CEILING:
        return {**ceiling(trained.classifier, x[:batch_size or examples], y[:batch_size or examples], tf),
                "onednn_setting": kernels}
    model, reset, counts = _counting(trained.classifier, tf)
    key = AttackKey.parse(key_text)
    spec = suite.get(key.family)
    attack = spec.build(budgets, threat)
    target = _target(spec, model, key)
    # Compile outside the clock: two small batches of different sizes, so the traces that
    # reduce_retracing relaxes to any batch size exist before the timed run.
    attack.run(x[:2], y[:2], 0, target)
    attack.run(x[:3], y[:3], 0, target)
    reset()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    x_adv = attack.run(x, y, 1, target)
    seconds = time.perf_counter() - start
    forwarded, backpropagated = counts()
    routed = trained.classifier(x_adv, training=False)[outputs.ROUTED]
    return {"attack": key_text, "seconds": seconds, "seconds_per_image": seconds / examples,
            "images_forwarded": forwarded, "images_backpropagated": backpropagated,
            "routed_accuracy": float(np.mean(np.argmax(routed, 1) == y)),
            "load_before": load_before, "load_after": os.getloadavg()[0], "onednn_setting": kernels}


CEILING = "ceiling"


def _target(spec, model, key):
    """The target the evaluation attacks for `key` (nfi_tf.evaluation.plan): the spec's own (the
    route-aware objectives) or the output's through its switch. A baseline tree from before
    the one target type built it with `nfi_targets.target_for`."""
    try:
        from nfi_tf.evaluation.switch import output_target
    except ImportError:
        from nfi_tf.evaluation.suite.nfi_targets import target_for

        return target_for(model, key)
    own = getattr(spec, "target", None)
    return own(model, key) if own else output_target(model, key)


def ceiling(classifier, x, y, tf, repeats: int = 30) -> dict:
    """The model's own rate on one attack batch, with no attack around it: `repeats` forwards, and
    `repeats` forward + backward-to-the-input steps (the work of one gradient-attack iteration),
    each as one compiled call per step. An attack loop can at best reach these rates; what
    separates them from the machine's peak is the model's kernels, not the attack."""
    from nfi_tf import outputs

    x, y = tf.constant(x), tf.constant(y)

    @tf.function
    def forward(z):
        return classifier(z, training=False)[outputs.ROUTED]

    @tf.function
    def gradient(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y, logits=classifier(z, training=False)[outputs.TRADEOFF]))
        return tape.gradient(loss, z)

    out = {"attack": CEILING, "batch": int(x.shape[0])}
    for name, fn, passes in (("forward", forward, 1), ("forward_backward", gradient, 2)):
        fn(x).numpy()
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                result = fn(x)
            result.numpy()
            best = min(best, time.perf_counter() - start)
        out[f"{name}_seconds"] = best
        out[f"{name}_images"] = passes * repeats * int(x.shape[0])  # forwards + backwards
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    row = measure(args[0], int(args[1]), args[2], int(args[3]) if len(args) > 3 else None)
    print("ATTACK_ROW " + json.dumps(row), flush=True)
