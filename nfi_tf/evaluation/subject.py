"""`Subject`: the model under test, whoever made it — the one thing the pipeline attacks and scores.

The pipeline needs the same few things from an nfi model dir and from any user classifier: a
differentiable `classifier` (images -> dict of outputs; the attacks' targets are built on it), a
`score` function (numpy images -> dict of numpy outputs, one per table row: for an ONNX file it
is ONNX Runtime on the file itself), the outputs it has (`rows`), whether it has gradients, the
dataset's name and classes, a fingerprint that tells whether two runs evaluated the same model,
what it is (stated in the report) and where its reports go. `subjects.load_subject` builds one
from anything a user can hand over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable

import numpy as np

from nfi_tf import outputs
from nfi_tf.vocab import Method


@dataclasses.dataclass
class Subject:
    method: Method
    rows: tuple[str, ...]  # the outputs attacked and scored (table rows)
    classifier: Callable  # images tensor -> {output: logits tensor}, differentiable if `gradients`
    score: Callable[[np.ndarray], dict]  # numpy images -> {row: numpy}, every row and extra row
    dataset: str
    num_classes: int
    class_names: tuple[str, ...]
    fingerprint: str  # sha256 of the model file(s), or of the weights for an in-memory model
    out_dir: str | None  # where eval.json, eval.md and eval.npz go (None: nowhere)
    heads_kernel: Callable[[], np.ndarray] | None = None  # Figure 1 (right): the trade-off kernel
    description: str = ""  # what was evaluated and how it was wrapped (stated in the report)
    gradients: bool = True  # False: only gradient-free attacks can run (an ONNX file, no twin)
    query: Callable[[np.ndarray], np.ndarray] | None = None  # numpy judge (ONNX Runtime on a file)
    extra_rows: tuple[str, ...] = ()  # rows scored but never attacked white-box (routed_onnx)
    exported: Callable[[np.ndarray], np.ndarray] | None = None  # --onnx: the exported routed logits
    notes: list[str] = dataclasses.field(default_factory=list)  # what could not run, and why

    @property
    def routed(self) -> bool:
        """It has a routing switch (the route-aware attacks apply)."""
        return self.method == Method.NFI

    @property
    def all_rows(self) -> tuple[str, ...]:
        return self.rows + self.extra_rows


def compiled_score(classifier) -> Callable[[np.ndarray], dict]:
    """score() of a TensorFlow/Keras classifier: one compiled forward, numpy out."""
    import tensorflow as tf

    predict = tf.function(lambda z: classifier(z, training=False), reduce_retracing=True)
    return lambda x: {k: v.numpy() for k, v in predict(tf.constant(x)).items()}


def with_exported(subject: Subject, exported: Callable[[np.ndarray], np.ndarray]) -> Subject:
    """The subject with its exported ONNX model beside it (--onnx): every input is also scored
    on the file (row routed_onnx) and the file is attacked by Square through ONNX Runtime."""
    score = subject.score

    def both(x):
        out = score(x)
        out[outputs.ROUTED_ONNX] = exported(x)
        return out

    return dataclasses.replace(subject, score=both, extra_rows=(outputs.ROUTED_ONNX,), exported=exported)


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
