"""Models trained in mixed precision, exported as float32 graphs.

`model.keras` does not keep the training's dtype policy (our backbones rebuild their layers from
`get_config`, which has no dtype): a loaded model computes in whatever Keras' *global* policy is
at load time. A fresh process loads float32, but a process that trained under `mixed_bfloat16`
(a notebook, a test, a pipeline) would load a bfloat16 backbone, and the SavedModel and ONNX
graph would carry its casts: ONNX Runtime's CPU provider has no bfloat16 convolution.

So the export always loads the classifier under the float32 policy (the graph it serves), and,
when `config.json` says training ran in mixed precision, loads it a second time under that
policy: the model *as trained*, the reference its float32 export is compared with. Variables
are float32 under either policy, so both share the same numbers; only the compute differs.
Half-precision compute at serving time is `--precision=fp16` (`export.precisions.fp16`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from nfi_tf.model_io import load_classifier

FLOAT32 = "float32"


@contextlib.contextmanager
def global_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block, then restored."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def compute_dtypes(model: keras.Model) -> set[str]:
    """Every compute dtype among the model's layers, nested models included."""
    dtypes, stack = set(), [model]
    while stack:
        layer = stack.pop()
        dtypes.add(layer.compute_dtype)
        stack.extend(getattr(layer, "layers", []))
    return dtypes


def load_for_export(path: str, mixed_precision: str) -> tuple[keras.Model, keras.Model | None]:
    """(the float32 classifier, the classifier as trained or None when it trained in float32).

    `mixed_precision` is the training config's value ("off", "mixed_float16", "mixed_bfloat16").
    """
    with global_policy(FLOAT32):
        classifier = load_classifier(path)
    if mixed_precision == "off":
        return classifier, None
    with global_policy(mixed_precision):
        as_trained = load_classifier(path)
    return classifier, as_trained
