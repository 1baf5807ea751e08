"""Gemm, MatMul and the inference normalizations (BatchNormalization, LayerNormalization)."""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import normalize_axis, optional, rank_of


@register("Gemm")
def gemm(inputs, node):
    """alpha * A' B' + beta * C, A' = A^T when transA, B' = B^T when transB."""
    a, b, c = tf.convert_to_tensor(inputs[0]), inputs[1], optional(inputs, 2)
    y = tf.linalg.matmul(a, tf.cast(b, a.dtype), transpose_a=bool(node.attr("transA", 0)),
                         transpose_b=bool(node.attr("transB", 0)))
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    y = y if alpha == 1.0 else alpha * y
    return y if c is None else y + beta * tf.cast(c, a.dtype)


@register("MatMul")
def matmul(inputs, node):
    """numpy's matmul: batch dimensions broadcast, a 1-D operand is a row (a) or column (b)."""
    a, b = tf.convert_to_tensor(inputs[0]), tf.convert_to_tensor(inputs[1])
    a_vector, b_vector = rank_of(a) == 1, rank_of(b) == 1
    y = tf.linalg.matmul(a[None] if a_vector else a, b[:, None] if b_vector else b)
    if b_vector:
        y = y[..., 0]
    return y[..., 0, :] if a_vector else y


def _per_channel(v, rank: int, dtype):
    return tf.reshape(tf.cast(v, dtype), [-1] + [1] * (rank - 2))


@register("BatchNormalization")
def batch_normalization(inputs, node):
    """Inference: (x - mean) / sqrt(var + epsilon) * scale + B over channel axis 1."""
    if node.attr("training_mode", 0) or any(node.outputs[1:]):
        raise node.unsupported("training_mode or its running-statistics outputs")
    x = tf.convert_to_tensor(inputs[0])
    scale, bias, mean, var = (_per_channel(v, rank_of(x), x.dtype) for v in inputs[1:5])
    factor = scale * tf.math.rsqrt(var + node.attr("epsilon", 1e-5))
    return x * factor + (bias - mean * factor)


@register("LayerNormalization")
def layer_normalization(inputs, node):
    """Normalizes over the axes from `axis` (default -1) to the last; Scale and B broadcast."""
    if any(node.outputs[1:]):
        raise node.unsupported("its Mean and InvStdDev outputs")
    x, scale, bias = tf.convert_to_tensor(inputs[0]), inputs[1], optional(inputs, 2)
    axes = list(range(normalize_axis(node.attr("axis", -1), rank_of(x)), rank_of(x)))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    y = (x - mean) * tf.math.rsqrt(var + node.attr("epsilon", 1e-5)) * tf.cast(scale, x.dtype)
    return y if bias is None else y + tf.cast(bias, x.dtype)
