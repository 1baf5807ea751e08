"""An attack written the way an outside reviewer would, to check our reported worst case.

    python scripts/independent_attack.py --model_dir=runs/mnist_quickstart [--examples=500] [--out=F]

Deliberately independent of `nfi_tf.attacks` and `nfi_tf.evaluation` (plain TensorFlow, its own
loop): L-inf PGD on the CW margin max_{j != y} z_j - z_y summed over the model's heads (nfi: the
three heads; TRADES: its one head), 100 steps of 2.5·eps/100, two random restarts, keeping any
iterate that fools the served output (nfi: the *hard* routed output; TRADES: its head). It
prints (and with --out writes) the served output's accuracy under it on the first --examples
test images; the evaluation's worst case for that output on the same images must not be above
this number (a higher one would be a bug in our evaluation).
"""

from __future__ import annotations

import argparse
import importlib
import json

# Before TensorFlow loads: the package quiets its CPU-only start-up and picks its CPU kernels
# (an import_module call, so that sorting the imports cannot move it after TensorFlow's).
nfi_tf = importlib.import_module("nfi_tf")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nfi_tf import data, io_utils, model_io, outputs  # noqa: E402
from nfi_tf.config import make_config  # noqa: E402


def margin(logits, y):
    onehot = tf.one_hot(y, tf.shape(logits)[-1])
    return tf.reduce_max(logits - 1e9 * onehot, axis=-1) - tf.reduce_sum(onehot * logits, axis=-1)


def attack(model, x, y, eps, steps, restarts, seed, heads, served):
    x, y = tf.constant(x), tf.constant(y, tf.int32)
    alpha = 2.5 * eps / steps
    fooled = np.zeros(len(y), bool)

    @tf.function
    def step(x_adv):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            out = model(x_adv, training=False)
            loss = tf.add_n([margin(out[h], y) for h in heads])
        g = tape.gradient(loss, x_adv)
        x_new = tf.clip_by_value(tf.clip_by_value(x_adv + alpha * tf.sign(g), x - eps, x + eps), 0, 1)
        wrong = tf.not_equal(tf.argmax(out[served], -1, output_type=tf.int32), y)
        return x_new, wrong

    for r in range(restarts):
        rng = tf.random.Generator.from_seed(seed + r)
        x_adv = tf.clip_by_value(x + rng.uniform(x.shape, -eps, eps), 0, 1)
        for _ in range(steps + 1):
            x_adv, wrong = step(x_adv)
            fooled |= wrong.numpy()
    return fooled


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=250)
    parser.add_argument("--out", default=None, help="also write the result to this JSON file")
    args = parser.parse_args()
    trained = model_io.load_trained(args.model_dir)
    nfi = trained.config.model.method == "nfi"
    heads, served = (outputs.HEADS, outputs.ROUTED) if nfi else (outputs.HEADS_TRADES, outputs.TRADEOFF)
    eps = make_config(trained.config.data.dataset).eval_attack.epsilon
    images, labels = data.load_arrays(trained.config.data, "test", args.examples)
    x = data.uint8_to_float(images)
    clean = np.argmax(trained.classifier(x, training=False)[served], 1) == labels
    fooled = np.concatenate([
        attack(trained.classifier, x[i:i + args.batch_size], labels[i:i + args.batch_size], eps,
               args.steps, args.restarts, seed=i, heads=heads, served=served)
        for i in range(0, len(labels), args.batch_size)])
    robust = clean & ~fooled
    result = {"model_dir": args.model_dir, "examples": int(len(labels)), "epsilon": eps,
              "output": served, "heads": list(heads), "steps": args.steps, "restarts": args.restarts,
              "clean": float(clean.mean()), "accuracy_under_attack": float(robust.mean()),
              "nfi_tf": nfi_tf.__version__}
    if nfi:  # the name earlier versions printed
        result["routed_accuracy_under_attack"] = result["accuracy_under_attack"]
    print(json.dumps(result))
    if args.out:
        io_utils.atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
