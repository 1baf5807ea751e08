"""Pad: constant, reflect and edge modes; negative pads crop. Pads (and the optional axes of
opset 18) must be known numbers: attributes before opset 11, inputs from it."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import normalize_axis, optional, rank_of, shape_of, static_ints


def _arguments(inputs, node):
    """(pads as [[begin, end]] per axis, constant value or None)."""
    rank = rank_of(inputs[0])
    if node.opset < 11:
        flat, value = tuple(node.attr("pads")), node.attr("value", 0.0)
        axes = tuple(range(rank))
    else:
        flat = static_ints(inputs[1], node, "pads")
        value = optional(inputs, 2)
        given = optional(inputs, 3)
        axes = tuple(range(rank)) if given is None else static_ints(given, node, "axes")
    pads = [[0, 0] for _ in range(rank)]
    for i, axis in enumerate(axes):
        pads[normalize_axis(axis, rank)] = [flat[i], flat[len(axes) + i]]
    return pads, value


def _crop(x, pads):
    """Negative pads remove elements; what is left is padded by the positive ones."""
    if all(b >= 0 and e >= 0 for b, e in pads):
        return x, pads
    index = tuple(slice(max(0, -b), None if e >= 0 else e) for b, e in pads)
    return x[index], [[max(0, b), max(0, e)] for b, e in pads]


def _edge(x, pads):
    for axis, (begin, end) in enumerate(pads):
        if begin or end:
            size = shape_of(x)[axis]
            x = tf.gather(x, np.clip(np.arange(-begin, size + end), 0, size - 1), axis=axis)
    return x


@register("Pad")
def pad(inputs, node):
    mode = node.attr("mode", "constant")
    pads, value = _arguments(inputs, node)
    x, pads = _crop(tf.convert_to_tensor(inputs[0]), pads)
    if mode == "constant":
        fill = tf.zeros((), x.dtype) if value is None else tf.cast(tf.reshape(value, []), x.dtype)
        return tf.pad(x, pads, constant_values=fill)
    if mode == "reflect":
        return tf.pad(x, pads, mode="REFLECT")
    if mode == "edge" and None not in [shape_of(x)[a] for a, p in enumerate(pads) if any(p)]:
        return _edge(x, pads)
    raise node.unsupported(f"mode={mode}" + (" on a size known only at run time" if mode == "edge" else ""))
