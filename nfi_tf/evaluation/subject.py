"""`Subject`: the model an evaluation attacks and scores, whoever made it.

The runner needs the same few things from an nfi model dir and from any user classifier: a
differentiable `classifier` (images -> dict of outputs; the attacks' targets are built on it), a
`score` function (numpy images -> dict of numpy outputs, one per table row: for an ONNX file
it is ONNX Runtime on the file itself), the dataset's name and classes, a fingerprint that
tells whether two runs evaluated the same model, and where its reports go.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class Subject:
    method: str  # "nfi", "trades" or "classifier"
    rows: tuple[str, ...]  # the outputs scored (table rows)
    classifier: Callable  # images tensor -> {output: logits tensor}, differentiable
    score: Callable[[np.ndarray], dict]  # numpy images -> {output: numpy}, every row
    dataset: str
    num_classes: int
    class_names: tuple[str, ...]
    fingerprint: str  # sha256 of the model file(s), or of the weights for an in-memory model
    out_dir: str | None  # where eval.json, eval.md and eval.npz go (None: nowhere)
    heads_kernel: Callable[[], np.ndarray] | None = None  # Figure 1 (right): the trade-off kernel
    description: str = ""  # what was evaluated and how it was wrapped (stated in the report)


def compiled_score(classifier) -> Callable[[np.ndarray], dict]:
    """score() of a TensorFlow/Keras classifier: one compiled forward, numpy out."""
    import tensorflow as tf

    predict = tf.function(lambda z: classifier(z, training=False), reduce_retracing=True)
    return lambda x: {k: v.numpy() for k, v in predict(tf.constant(x)).items()}


def file_fingerprint(path: str) -> str:
    """sha256 of a file, or of every file under a directory (a SavedModel), in name order."""
    h = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, files in os.walk(path) for f in files)
    for p in paths:
        h.update(os.path.relpath(p, path).encode() if p != path else b"")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def weights_fingerprint(weights) -> str:
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()
