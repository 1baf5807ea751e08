"""Convert the serving tf.function to ONNX with tf2onnx, and check what comes out.

Keras 3's TF `ops.argmax` maps -0.0 to -tiny before `tf.argmax` (so +0.0 beats -0.0 in a tie,
as on JAX); the sign test it uses, `Less(BitwiseAnd(Bitcast(x, int32), INT32_MIN), 0)`, has no
ONNX form (ONNX has no Bitcast), so tf2onnx 1.17 logs "unsupported op" and still returns a
model ONNX Runtime refuses to load. `rewrite_keras_signbit` swaps that exact pattern for
`x < 0 or 1/x < 0`, the same bit for every non-NaN x (1/-0.0 = -inf), so routing ties resolve
as in Keras instead of silently differing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np
import onnx
import tensorflow as tf

from nfi_tf.errors import NfiError

BATCH_DIM = "batch"


class ConversionError(NfiError):
    """tf2onnx could not produce a valid ONNX graph."""


def rewrite_keras_signbit(g, ops):
    """tf2onnx rewriter: Keras' float signbit (bitcast + mask) -> `x < 0 or 1/x < 0`."""
    from tf2onnx.graph_matcher import GraphMatcher, OpTypePattern

    pattern = OpTypePattern("Less", name="less", inputs=[
        OpTypePattern("BitwiseAnd", name="and", inputs=[
            OpTypePattern("Bitcast", name="bitcast", inputs=["*"]),
            OpTypePattern("Const", name="mask"),
        ]),
        OpTypePattern("Const", name="zero"),
    ])
    for match in list(GraphMatcher(pattern, allow_reorder=False).match_ops(ops)):
        less, bitcast = match.get_op("less"), match.get_op("bitcast")
        x = bitcast.input[0]
        if (g.get_dtype(x) != onnx.TensorProto.FLOAT
                or g.get_dtype(bitcast.output[0]) != onnx.TensorProto.INT32
                or int(match.get_op("mask").get_tensor_value()) != np.iinfo(np.int32).min
                or int(match.get_op("zero").get_tensor_value()) != 0):
            continue  # some other bit trick: leave it, the checker will report it
        zero = g.make_const(f"{less.name}/signbit_zero", np.array(0, np.float32)).output[0]
        shape, name = g.get_shape(less.output[0]), less.name
        negative = g.make_node("Less", [x, zero], name=f"{name}/negative",
                               shapes=[shape], dtypes=[onnx.TensorProto.BOOL])
        inverse = g.make_node("Reciprocal", [x], name=f"{name}/inverse",
                              shapes=[g.get_shape(x)], dtypes=[onnx.TensorProto.FLOAT])
        negative_zero = g.make_node("Less", [inverse.output[0], zero], name=f"{name}/neg_zero",
                                    shapes=[shape], dtypes=[onnx.TensorProto.BOOL])
        signbit = g.make_node("Or", [negative.output[0], negative_zero.output[0]],
                              name=f"{name}/signbit", shapes=[shape],
                              dtypes=[onnx.TensorProto.BOOL])
        ops.extend([negative, inverse, negative_zero, signbit])
        g.replace_all_inputs(less.output[0], signbit.output[0], ops=ops)
        g.safe_remove_nodes([less, match.get_op("and"), bitcast])
    return ops


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


@contextlib.contextmanager
def _tf2onnx_errors() -> Iterator[_Collect]:
    """tf2onnx reports unsupported ops only as log lines: collect them for the error message,
    and keep its INFO chatter out of the user's terminal."""
    logger = logging.getLogger("tf2onnx")
    handler, level, propagate = _Collect(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def convert(serve: tf.types.experimental.GenericFunction, opset: int) -> onnx.ModelProto:
    """The ONNX model of `serve` (same input signature), checked, with a named batch dim."""
    import tf2onnx

    with _tf2onnx_errors() as errors:
        try:
            model, _ = tf2onnx.convert.from_function(
                serve, input_signature=serve.input_signature, opset=opset,
                custom_rewriter=[rewrite_keras_signbit])
        except Exception as e:  # tf2onnx raises many types; all mean "conversion failed"
            raise ConversionError(f"tf2onnx failed at opset {opset}: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from e
    if errors.messages:
        raise ConversionError(f"tf2onnx could not convert the serving graph at opset {opset}: "
                              + "; ".join(errors.messages[-3:]))
    _name_batch_dim(model)
    check(model, expected_outputs=tuple(serve.get_concrete_function().structured_outputs))
    return model


def _name_batch_dim(model: onnx.ModelProto) -> None:
    # tf2onnx names the dynamic dim "unk__N"; one shared name says all outputs follow the input.
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def check(model: onnx.ModelProto, expected_outputs: tuple[str, ...]) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ConversionError(f"the converted ONNX model is invalid: "
                              f"{str(e).splitlines()[0]}") from e
    outputs = [o.name for o in model.graph.output]
    if sorted(outputs) != sorted(expected_outputs):
        raise ConversionError(f"ONNX outputs {outputs} differ from the serving function's "
                              f"{list(expected_outputs)}")


def save(model: onnx.ModelProto, path: str) -> None:
    onnx.save_model(model, path)
