"""Elementwise arithmetic with numpy broadcasting, and the activations without parameters.

Integer Div truncates (ONNX's rule, what shape arithmetic relies on); float Div divides.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin.registry import register


def _is_integer(x) -> bool:
    return tf.as_dtype(x.dtype).is_integer


def _div(a, b):
    return tf.truncatediv(a, b) if _is_integer(a) else tf.math.divide(a, b)


def _pow(a, b):
    return tf.pow(a, tf.cast(b, a.dtype))


SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875  # ONNX's defaults
BINARY = {"Add": tf.add, "Sub": tf.subtract, "Mul": tf.multiply, "Div": _div, "Pow": _pow}
VARIADIC = {"Sum": tf.add, "Max": tf.maximum, "Min": tf.minimum}
UNARY = {
    "Relu": tf.nn.relu, "Sigmoid": tf.sigmoid, "Tanh": tf.tanh, "Exp": tf.exp, "Log": tf.math.log,
    "Sqrt": tf.sqrt, "Neg": tf.negative, "Abs": tf.abs, "Reciprocal": tf.math.reciprocal,
    "Erf": tf.math.erf, "Softplus": tf.nn.softplus, "Softsign": tf.nn.softsign,
}


def _binary(fn):
    return lambda inputs, node: fn(tf.convert_to_tensor(inputs[0]), inputs[1])


def _variadic(fn):
    return lambda inputs, node: functools.reduce(fn, [tf.convert_to_tensor(v) for v in inputs])


def _unary(fn):
    return lambda inputs, node: fn(inputs[0])


for _name, _fn in BINARY.items():
    register(_name)(_binary(_fn))
for _name, _fn in VARIADIC.items():
    register(_name)(_variadic(_fn))
for _name, _fn in UNARY.items():
    register(_name)(_unary(_fn))


@register("Mean")
def mean(inputs, node):
    return functools.reduce(tf.add, [tf.convert_to_tensor(v) for v in inputs]) / len(inputs)


@register("Gelu")
def gelu(inputs, node):
    return tf.nn.gelu(inputs[0], approximate=node.attr("approximate", "none") == "tanh")


@register("Elu")
def elu(inputs, node):
    x, alpha = inputs[0], node.attr("alpha", 1.0)
    return tf.where(x > 0, x, alpha * (tf.exp(tf.minimum(x, 0)) - 1))


@register("Selu")
def selu(inputs, node):
    x = inputs[0]
    alpha, gamma = node.attr("alpha", SELU_ALPHA), node.attr("gamma", SELU_GAMMA)
    return gamma * tf.where(x > 0, x, alpha * (tf.exp(tf.minimum(x, 0)) - 1))


@register("LeakyRelu")
def leaky_relu(inputs, node):
    return tf.nn.leaky_relu(inputs[0], alpha=node.attr("alpha", 0.01))


@register("PRelu")
def prelu(inputs, node):
    x, slope = inputs[0], tf.cast(inputs[1], inputs[0].dtype)
    return tf.nn.relu(x) + slope * tf.minimum(x, tf.zeros((), x.dtype))


@register("HardSigmoid")
def hard_sigmoid(inputs, node):
    x = inputs[0]
    return tf.clip_by_value(node.attr("alpha", 0.2) * x + node.attr("beta", 0.5), 0.0, 1.0)


@register("HardSwish")
def hard_swish(inputs, node):
    x = inputs[0]
    return x * tf.clip_by_value(x / 6.0 + 0.5, 0.0, 1.0)


def _bound(value, default, dtype):
    return tf.constant(default, dtype) if value is None else tf.cast(value, dtype)


@register("Clip")
def clip(inputs, node):
    """min/max from the inputs (opset 11 on) or the attributes (before)."""
    x = tf.convert_to_tensor(inputs[0])
    if node.opset >= 11:
        low = inputs[1] if len(inputs) > 1 else None
        high = inputs[2] if len(inputs) > 2 else None
    else:
        low, high = node.attr("min"), node.attr("max")
    big = np.inf if x.dtype.is_floating else x.dtype.max
    small = -np.inf if x.dtype.is_floating else x.dtype.min
    return tf.minimum(tf.maximum(x, _bound(low, small, x.dtype)), _bound(high, big, x.dtype))
