"""Constants, shapes and pass-throughs: Constant, ConstantOfShape, Shape, Cast, Identity, Dropout.

Shape gives numbers when the dimensions it reports are known while tracing (then the chain of
shape arithmetic after it folds to constants) and a run-time tensor otherwise (a dynamic batch).
Casts to a floating type give the twin's compute dtype, so float arithmetic stays in one dtype.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import dynamic_shape, shape_of

CONSTANT_KINDS = ("value", "value_float", "value_floats", "value_int", "value_ints")


@register("Constant")
def constant(inputs, node):
    for kind in CONSTANT_KINDS:
        if kind in node.attrs:
            value = np.asarray(node.attrs[kind])
            return value.astype(node.float_dtype) if np.issubdtype(value.dtype, np.floating) else value
    raise node.unsupported(f"the attribute {sorted(node.attrs)}")


@register("ConstantOfShape")
def constant_of_shape(inputs, node):
    value = node.attr("value", np.zeros([1], node.float_dtype)).reshape(-1)[0]
    return tf.fill(tf.cast(inputs[0], tf.int64), tf.constant(value))


@register("Shape")
def shape(inputs, node):
    dims = shape_of(inputs[0])
    start, end = node.attr("start", 0), node.attr("end", len(dims))
    chosen = dims[start:end]
    if None not in chosen:
        return np.array(chosen, np.int64)
    return dynamic_shape(inputs[0])[start:end]


def _dtype(node) -> np.dtype:
    from onnx import helper

    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(node.attr("to")))
    return node.float_dtype if np.issubdtype(dtype, np.floating) else dtype


@register("Cast")
def cast(inputs, node):
    return tf.cast(inputs[0], _dtype(node))


@register("Identity")
def identity(inputs, node):
    return inputs[0]


@register("Dropout")
def dropout(inputs, node):
    """Inference: the input itself, and an all-true mask when one is asked for."""
    if len(node.outputs) > 1 and node.outputs[1]:
        return [inputs[0], tf.ones_like(inputs[0], dtype=tf.bool)]
    return inputs[0]
