"""Operators that move values around: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat,
Slice, Gather, Expand. Axes, perms, starts and ends must be known numbers; a target shape may
be computed at run time (a Shape -> Gather -> Concat chain on a dynamic batch)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import (
    dynamic_shape,
    flatten_2d,
    normalize_axis,
    optional,
    rank_of,
    shape_of,
    static_ints,
)

INT32_MAX = 2**31 - 1  # ONNX marks "to the end" with INT64_MAX; TF's slices take int32


def _zeros_copied(x, shape):
    """Reshape's 0: "this dimension of the input" (allowzero=0)."""
    dims = shape_of(x)
    if isinstance(shape, np.ndarray):
        zeros = [i for i, v in enumerate(shape) if v == 0]
        if all(dims[i] is not None for i in zeros):
            return np.array([dims[i] if v == 0 else v for i, v in enumerate(shape)], np.int64)
    shape = tf.cast(shape, tf.int64)
    n = shape.shape[0]
    full = tf.concat([dynamic_shape(x), tf.ones([max(0, n - len(dims))], tf.int64)], 0)[:n]
    return tf.where(tf.equal(shape, 0), full, shape)


@register("Reshape")
def reshape(inputs, node):
    x = inputs[0]
    if node.opset < 5:
        shape = np.asarray(node.attr("shape"), np.int64)
    else:
        shape = inputs[1]
    if not node.attr("allowzero", 0):
        shape = _zeros_copied(x, shape)
    return tf.reshape(x, shape)


@register("Flatten")
def flatten(inputs, node):
    return flatten_2d(inputs[0], normalize_axis(node.attr("axis", 1), rank_of(inputs[0])))


@register("Transpose")
def transpose(inputs, node):
    perm = node.attr("perm")
    return tf.transpose(inputs[0], perm=None if perm is None else list(perm))


def _axes(inputs, node, opset_as_input: int = 13):
    if node.opset >= opset_as_input:
        given = optional(inputs, 1)
        return None if given is None else static_ints(given, node, "axes")
    axes = node.attr("axes")
    return None if axes is None else tuple(axes)


@register("Squeeze")
def squeeze(inputs, node):
    axes = _axes(inputs, node)
    if axes is None:
        return tf.squeeze(inputs[0])
    return tf.squeeze(inputs[0], axis=[normalize_axis(a, rank_of(inputs[0])) for a in axes])


@register("Unsqueeze")
def unsqueeze(inputs, node):
    axes = _axes(inputs, node)
    rank = rank_of(inputs[0]) + len(axes)
    x = inputs[0]
    for axis in sorted(normalize_axis(a, rank) for a in axes):
        x = tf.expand_dims(x, axis)
    return x


@register("Concat")
def concat(inputs, node):
    values = [v for v in inputs if v is not None]
    return tf.concat(values, axis=normalize_axis(node.attr("axis"), rank_of(values[0])))


def _slice_arguments(inputs, node):
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        return starts, ends, node.attr("axes", tuple(range(len(starts)))), (1,) * len(starts)
    starts = static_ints(inputs[1], node, "starts")
    ends = static_ints(inputs[2], node, "ends")
    axes = optional(inputs, 3)
    steps = optional(inputs, 4)
    axes = tuple(range(len(starts))) if axes is None else static_ints(axes, node, "axes")
    steps = (1,) * len(starts) if steps is None else static_ints(steps, node, "steps")
    return starts, ends, axes, steps


@register("Slice")
def slice_(inputs, node):
    """numpy's slicing, which clamps out-of-range starts and ends as ONNX does."""
    x = inputs[0]
    starts, ends, axes, steps = _slice_arguments(inputs, node)
    index = [slice(None)] * rank_of(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        start, end = (int(np.clip(v, -INT32_MAX, INT32_MAX)) for v in (start, end))
        index[normalize_axis(int(axis), rank_of(x))] = slice(start, end, int(step))
    return x[tuple(index)]


@register("Gather")
def gather(inputs, node):
    x, indices = inputs
    axis = normalize_axis(node.attr("axis", 0), rank_of(x))
    indices = tf.convert_to_tensor(indices)
    size = tf.cast(tf.shape(x, out_type=tf.int64)[axis], indices.dtype)
    return tf.gather(x, tf.where(indices < 0, indices + size, indices), axis=axis)


@register("Expand")
def expand(inputs, node):
    x = tf.convert_to_tensor(inputs[0])
    target = tf.broadcast_dynamic_shape(dynamic_shape(x), tf.cast(inputs[1], tf.int64))
    return tf.broadcast_to(x, target)
