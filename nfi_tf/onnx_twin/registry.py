"""The operator table: ONNX op type -> a function `(inputs, node) -> output or outputs`.

`inputs` holds, per ONNX input, a tf.Tensor (it depends on the image), a numpy array (a weight,
a constant, or a shape known while tracing) or None (an optional input left out); the function
returns a tensor, or a list of them for a node with several outputs. A function works on numpy
and tf values alike: the twin calls it eagerly on numbers to fold constants and shapes.
Registering is the decorator, in the module of the operator's family.
"""

from __future__ import annotations

from collections.abc import Callable

OPS: dict[str, Callable] = {}


def register(*op_types: str):
    def add(fn: Callable) -> Callable:
        for op_type in op_types:
            if op_type in OPS:
                raise ValueError(f"ONNX operator {op_type} is registered twice")
            OPS[op_type] = fn
        return fn
    return add
