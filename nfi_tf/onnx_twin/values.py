"""What an operator needs to know of its inputs: shapes that may be partly unknown while
tracing (a dynamic batch), and numbers that must be known (axes, pads, a target shape)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def shape_of(x) -> list:
    """The static shape, None where a dimension is only known at run time."""
    if isinstance(x, np.ndarray):
        return list(x.shape)
    return list(tf.TensorShape(x.shape).as_list())


def rank_of(x) -> int:
    return len(shape_of(x))


def is_static(x) -> bool:
    return x is None or isinstance(x, np.ndarray)


def static(value, node, what: str) -> np.ndarray:
    """`value` as numpy, or the node's refusal when it is only known at run time."""
    if isinstance(value, np.ndarray):
        return value
    known = tf.get_static_value(value)
    if known is None:
        raise node.unsupported(f"{what} computed at run time")
    return np.asarray(known)


def static_ints(value, node, what: str) -> tuple[int, ...]:
    return tuple(int(v) for v in np.ravel(static(value, node, what)))


def optional(inputs: list, index: int):
    """The index-th input, None when it is absent or left empty."""
    return inputs[index] if index < len(inputs) else None


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def dynamic_shape(x) -> tf.Tensor:
    return tf.shape(x, out_type=tf.int64)


def flatten_2d(x, axis: int):
    """x reshaped to [prod(dims before axis), prod(dims from axis)] (ONNX Flatten's rule),
    with static sizes where the shape gives them, so a dynamic batch stays possible."""
    dims = shape_of(x)
    head, tail = dims[:axis], dims[axis:]
    if None not in tail:
        target = [1, -1] if axis == 0 else [-1, int(np.prod(tail, dtype=np.int64))]
    elif None not in head:
        target = [int(np.prod(head, dtype=np.int64)), -1]
    else:
        full = dynamic_shape(x)
        target = tf.stack([tf.reduce_prod(full[:axis]), tf.reduce_prod(full[axis:])])
    return tf.reshape(x, target)
