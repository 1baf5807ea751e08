"""Operators over axes: the Reduce* family and Softmax/LogSoftmax.

Softmax before opset 13 flattens the input to 2-D at `axis` (default 1) and normalizes each
row over everything after it; from opset 13 it normalizes along `axis` (default -1) only.
Reduce* take `axes` as an attribute, or as an input from opset 13 (ReduceSum) and 18 (the others).
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import dynamic_shape, flatten_2d, normalize_axis, optional, rank_of, static_ints

REDUCE = {"ReduceMean": tf.reduce_mean, "ReduceSum": tf.reduce_sum, "ReduceMax": tf.reduce_max,
          "ReduceMin": tf.reduce_min}
AXES_AS_INPUT = {"ReduceSum": 13}  # the opset from which `axes` is an input; 18 for the others


def _axes(inputs, node):
    if node.opset >= AXES_AS_INPUT.get(node.op_type, 18):
        given = optional(inputs, 1)
        axes = () if given is None else static_ints(given, node, "axes")
    else:
        axes = tuple(node.attr("axes", ()))
    if not axes:
        return None if not node.attr("noop_with_empty_axes", 0) else ()
    return [normalize_axis(a, rank_of(inputs[0])) for a in axes]


def _reduce(fn):
    def run(inputs, node):
        axes = _axes(inputs, node)
        if axes == ():
            return inputs[0]
        return fn(inputs[0], axis=axes, keepdims=bool(node.attr("keepdims", 1)))
    return run


for _name, _fn in REDUCE.items():
    register(_name)(_reduce(_fn))


def _flattened(x, axis: int, fn):
    """Opset < 13: fn over each row of x flattened to 2-D at `axis`."""
    return tf.reshape(fn(flatten_2d(x, axis), axis=-1), dynamic_shape(x))


def _softmax(fn):
    def run(inputs, node):
        x = tf.convert_to_tensor(inputs[0])
        if node.opset >= 13:
            return fn(x, axis=node.attr("axis", -1))
        return _flattened(x, normalize_axis(node.attr("axis", 1), rank_of(x)), fn)
    return run


register("Softmax")(_softmax(tf.nn.softmax))
register("LogSoftmax")(_softmax(tf.nn.log_softmax))
