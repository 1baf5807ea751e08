"""MaxPool, AveragePool (pads, ceil_mode, count_include_pad, dilations) and the global pools.

Each pool pads explicitly and runs VALID: MaxPool pads with -inf, AveragePool sums over zeros
and divides by a map of how many pixels each window counts (ONNX Runtime's rule: the input's
pixels, plus the stated pads when count_include_pad=1, never ceil_mode's extra ones).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin import spatial
from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import rank_of, shape_of


def _pool(x, kind: str, ws):
    strides, dilations, subsampled = spatial.strides_and_dilations(ws)
    y = tf.nn.pool(x, [w.kernel for w in ws], kind, strides=strides, padding="VALID",
                   dilations=dilations)
    return spatial.subsample(y, ws) if subsampled else y


def _geometry(inputs, node):
    x = inputs[0]
    if rank_of(x) != 4:
        raise node.unsupported(f"{rank_of(x) - 2} spatial dimensions (2 are supported)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.unsupported("its Indices output")
    kernel = tuple(node.attr("kernel_shape"))
    return x, spatial.windows(node, shape_of(x)[2:], kernel, bool(node.attr("ceil_mode", 0)))


@register("MaxPool")
def max_pool(inputs, node):
    x, ws = _geometry(inputs, node)
    padded = spatial.pad_nhwc(spatial.nhwc(x), ws, value=-np.inf)
    return spatial.nchw(_pool(padded, "MAX", ws))


def _counts(sizes, ws, include_pad: bool, dtype) -> np.ndarray:
    """[1, Ho, Wo, 1]: how many pixels each output's window averages."""
    mask = np.ones([1, *sizes, 1], dtype)
    if include_pad:
        mask = np.pad(mask, [[0, 0], *[[w.begin, w.end] for w in ws], [0, 0]], constant_values=1)
        ws = [spatial.Window(w.kernel, w.stride, w.dilation, 0, 0, w.extra) for w in ws]
    padded = spatial.pad_nhwc(tf.constant(mask), ws)
    area = float(np.prod([w.kernel for w in ws]))
    return np.asarray(_pool(padded, "AVG", ws)) * area


@register("AveragePool")
def average_pool(inputs, node):
    x, ws = _geometry(inputs, node)
    sizes = shape_of(x)[2:]
    if None in sizes:
        raise node.unsupported("a spatial size known only at run time")
    area = float(np.prod([w.kernel for w in ws]))
    sums = _pool(spatial.pad_nhwc(spatial.nhwc(x), ws), "AVG", ws) * area
    with tf.init_scope():  # a constant of the geometry: computed once, outside any trace
        counts = _counts(sizes, ws, bool(node.attr("count_include_pad", 0)), node.float_dtype)
    return spatial.nchw(sums / counts)


@register("GlobalAveragePool")
def global_average_pool(inputs, node):
    return tf.reduce_mean(inputs[0], axis=list(range(2, rank_of(inputs[0]))), keepdims=True)


@register("GlobalMaxPool")
def global_max_pool(inputs, node):
    return tf.reduce_max(inputs[0], axis=list(range(2, rank_of(inputs[0]))), keepdims=True)
