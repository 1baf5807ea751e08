"""An ONNX file as the twin reads it: its nodes in run order, its weights as numpy arrays.

`load_graph` keeps only the nodes the chosen output depends on (an unused ArgMax or NMS head
is no reason to refuse a file) and decodes every attribute once, so an operator reads
`node.attr("strides", (1, 1))` and never a protobuf. Floating-point weights and constants take
the twin's compute dtype here, once; integer ones (shapes, indices) stay as they are.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from nfi_tf import outputs
from nfi_tf.errors import NfiError

DEFAULT_DOMAINS = ("", "ai.onnx")
# The twin is asked for by default, so its refusal says both ways on: a twin by hand, or none.
FALLBACK = ("pass a hand-written differentiable twin with --twin=PATH (twin= in Python), or --twin=none "
            "to run Square alone on the file")


@dataclasses.dataclass(frozen=True)
class Node:
    """One ONNX node: its operator key (`Conv`, or `domain.Op` outside the default domain)."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict
    opset: int
    float_dtype: np.dtype

    def attr(self, key: str, default=None):
        return self.attrs.get(key, default)

    def unsupported(self, what: str | None = None) -> NfiError:
        """The one-line refusal: the operator (and what of it), the node, the fallback."""
        thing = f"ONNX operator {self.op_type}" + (f" with {what}" if what else "")
        return NfiError(f"the automatic twin does not support {thing} (node {self.name}); {FALLBACK}")


@dataclasses.dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]  # in run order, only those the output needs
    initializers: dict  # name -> np.ndarray
    input_name: str
    input_shape: tuple  # the file's declared input shape, None where a dimension is symbolic
    output_name: str
    opset: int


def read_model(model_or_path):
    """An onnx.ModelProto from itself or a path; a one-line error for anything else."""
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = os.fspath(model_or_path)
    if not os.path.isfile(path):
        raise NfiError(f"no ONNX file at {path}")
    try:
        return onnx.load(path)
    except Exception as e:  # protobuf raises its own types for a file that is not ONNX
        raise NfiError(f"{path} is not a loadable ONNX model ({type(e).__name__})") from e


def to_numpy(tensor_proto, float_dtype: np.dtype) -> np.ndarray:
    from onnx import numpy_helper

    value = numpy_helper.to_array(tensor_proto)
    return value.astype(float_dtype) if np.issubdtype(value.dtype, np.floating) else value


def decode_attribute(attribute, float_dtype: np.dtype):
    """An attribute's Python value: str for strings, numpy for tensors, float_dtype for floats."""
    from onnx import AttributeProto, helper

    if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        return attribute  # a subgraph (If, Loop): the operator is refused before it is read
    value = helper.get_attribute_value(attribute)
    if attribute.type == AttributeProto.TENSOR:
        return to_numpy(value, float_dtype)
    if attribute.type == AttributeProto.STRING:
        return value.decode()
    if attribute.type == AttributeProto.STRINGS:
        return [v.decode() for v in value]
    if attribute.type == AttributeProto.INTS:
        return tuple(int(v) for v in value)
    if attribute.type == AttributeProto.FLOATS:
        return tuple(float(v) for v in value)
    return value


def default_opset(model) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    return 1


def make_node(proto, index: int, opset: int, float_dtype: np.dtype) -> Node:
    op = proto.op_type if proto.domain in DEFAULT_DOMAINS else f"{proto.domain}.{proto.op_type}"
    name = proto.name or (proto.output[0] if proto.output else f"#{index}")
    attrs = {a.name: decode_attribute(a, float_dtype) for a in proto.attribute}
    return Node(op, name, tuple(proto.input), tuple(proto.output), attrs, opset, float_dtype)


def pick_output(names: list[str], output: str | None, where: str) -> str:
    """The output ONNX Runtime is asked for (the same rule as evaluation's OnnxLogits)."""
    if output is None:
        return outputs.LOGITS if outputs.LOGITS in names else names[0]
    if output not in names:
        raise NfiError(f"{where} has no output {output!r}. Received outputs: {names}")
    return output


def needed_in_order(nodes: list[Node], output: str, known: set[str]) -> tuple[Node, ...]:
    """The nodes `output` depends on, each after the nodes it reads (ONNX asks files to be
    sorted; this does not rely on it)."""
    producer = {name: node for node in nodes for name in node.outputs if name}
    order: list[Node] = []
    seen: set[int] = set()
    stack = [(producer[output], False)] if output in producer else []
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for name in node.inputs:
            if name and name not in known and name in producer and id(producer[name]) not in seen:
                stack.append((producer[name], False))
    return tuple(order)


def graph_input(model, initializers: dict, where: str) -> tuple[str, tuple]:
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise NfiError(f"the automatic twin takes a model with one image input; {where} has "
                       f"{len(inputs)}. Received inputs: {[v.name for v in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in dims)
    return inputs[0].name, shape


def load_graph(model_or_path, output: str | None = None, float_dtype=np.float32) -> Graph:
    """The graph of an ONNX file or ModelProto, pruned to `output` (default: as OnnxLogits)."""
    model = read_model(model_or_path)
    where = "the ONNX model" if not isinstance(model_or_path, (str, os.PathLike)) else str(model_or_path)
    float_dtype = np.dtype(float_dtype)
    opset = default_opset(model)
    initializers = {t.name: to_numpy(t, float_dtype) for t in model.graph.initializer}
    name, shape = graph_input(model, initializers, where)
    chosen = pick_output([o.name for o in model.graph.output], output, where)
    nodes = [make_node(p, i, opset, float_dtype) for i, p in enumerate(model.graph.node)]
    order = needed_in_order(nodes, chosen, set(initializers) | {name})
    return Graph(order, initializers, name, shape, chosen, opset)
