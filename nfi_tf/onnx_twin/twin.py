"""`build_twin`: an ONNX file as a differentiable TensorFlow function, x -> the chosen output.

The graph is walked node by node with the operator table. A node whose inputs are all known
numbers (weights, constants, shapes known while tracing) is computed at once, eagerly, and its
outputs kept as numbers: that folds the constant parts of the graph when the twin is built and
the shape arithmetic (Shape -> Gather -> Concat -> Reshape) when it is traced, so only the path
from the image is left to TensorFlow's graph and its gradients.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from nfi_tf.onnx_twin.graph import Graph, Node, load_graph
from nfi_tf.onnx_twin.registry import OPS
from nfi_tf.onnx_twin.values import is_static


def run_node(node: Node, env: dict) -> None:
    """Compute one node from `env` (value name -> value) and store its outputs there."""
    values = [env[name] if name else None for name in node.inputs]
    if all(is_static(v) for v in values):
        with tf.init_scope():  # numbers in, numbers out, even inside a trace
            outs = [None if o is None else np.asarray(o) for o in _as_list(OPS[node.op_type](values, node))]
    else:
        outs = _as_list(OPS[node.op_type](values, node))
    for name, value in zip(node.outputs, outs):
        if name:
            env[name] = value


def _as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def fold_constants(graph: Graph) -> tuple[dict, tuple[Node, ...]]:
    """(values known without the image, the nodes left to run on it)."""
    known = dict(graph.initializers)
    left = []
    for node in graph.nodes:
        if all(not name or name in known for name in node.inputs):
            run_node(node, known)
        else:
            left.append(node)
    return known, tuple(left)


def check_operators(graph: Graph) -> None:
    for node in graph.nodes:
        if node.op_type not in OPS:
            raise node.unsupported()


@dataclasses.dataclass(eq=False, repr=False)  # hashable by identity: tf.function keys on it
class OnnxTwin:
    """x (the file's own layout, e.g. NCHW) -> the chosen output, as a tf.Tensor."""

    graph: Graph
    constants: dict
    nodes: tuple[Node, ...]
    dtype: tf.DType

    @property
    def input_shape(self) -> tuple:
        return self.graph.input_shape

    def __repr__(self) -> str:
        return (f"OnnxTwin({self.graph.input_name} {list(self.input_shape)} -> {self.graph.output_name}, "
                f"{len(self.graph.nodes)} nodes, {self.dtype.name})")

    def __call__(self, x) -> tf.Tensor:
        env = dict(self.constants)
        env[self.graph.input_name] = tf.cast(x, self.dtype)
        for node in self.nodes:
            run_node(node, env)
        return tf.convert_to_tensor(env[self.graph.output_name])


def trace_check(twin: OnnxTwin) -> None:
    """Trace once on the file's shape with a dynamic batch, so an operator setting the twin
    cannot follow is refused now; skipped when other dimensions are symbolic too."""
    shape = twin.input_shape
    if not shape or None in shape[1:]:
        return
    spec = tf.TensorSpec([None, *shape[1:]], twin.dtype)
    tf.function(twin, autograph=False).get_concrete_function(spec)


def build_twin(model_or_path, output: str | None = None, dtype="float32") -> OnnxTwin:
    """The automatic twin of an ONNX model (path or ModelProto): differentiable w.r.t. x, any
    batch size, computed in `dtype` (float64 for gradient checks). An operator outside
    SUPPORTED_OPS is a one-line NfiError naming it and the --twin=PATH fallback."""
    dtype = tf.as_dtype(dtype)
    graph = load_graph(model_or_path, output, dtype.as_numpy_dtype)
    check_operators(graph)
    constants, nodes = fold_constants(graph)
    twin = OnnxTwin(graph, constants, nodes, dtype)
    trace_check(twin)
    return twin
