"""TensorFlow's own FLOP count of a traced function, to check the analytic one (`nfi_tf.flops`).

TensorFlow's profiler (`tf.compat.v1.profiler`, "float_ops") counts a graph's FLOPs with
per-op-type functions registered through `ops.RegisterStatistics(op_type, "flops")`: Conv2D
and its two gradients, MatMul, BiasAdd, pooling, element-wise arithmetic, reductions.
`graph_flops` calls those same functions, with two differences that make the count the work
the step actually runs:

- only *live* ops are counted (those an output or a stateful side effect of the function
  depends on). A gradient function emits every input's gradient, e.g. a Conv2D's gradient
  always builds both Conv2DBackpropInput and Conv2DBackpropFilter, and the attack's gradient
  to the input leaves the filter gradients unused; Grappler prunes such dead ops before
  anything runs, the profiler would count them;
- functions called from the graph (CleverHans' `compute_gradient` is its own `tf.function`)
  are counted once per live call, recursively.

TensorFlow's counting conventions, which the analytic count does not share: a Conv2D's
backward passes are counted over the positions of the convolution's *input* (the dense
transposed convolution), so a "valid" 3x3 convolution's gradients count (H/(H-2))^2 more
multiply-adds than its forward pass, where the analytic count says "the same as the forward";
and BiasAdd, pooling and element-wise ops are counted, where the analytic count keeps only
multiply-add layers. `MULTIPLY_ADD_OPS` separates the two kinds.
"""

from __future__ import annotations

import collections

import tensorflow as tf
from tensorflow.python.framework import ops

# The op types whose FLOPs are multiply-adds (2 FLOPs each): what `nfi_tf.flops` counts.
MULTIPLY_ADD_OPS = frozenset({
    "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative",
    "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter",
    "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
})
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
# Control flow whose body would run a data-dependent number of times: counted once would be
# wrong, so such ops are reported as uncounted instead (none in the training step: CleverHans
# unrolls its PGD loop in Python).
_LOOP_OPS = frozenset({"While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase"})


def _live_ops(graph) -> list:
    """The ops that the graph's outputs or control outputs (its side effects) depend on."""
    roots = [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    if not roots:
        return list(graph.get_operations())
    seen: dict[str, object] = {}
    stack = roots
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(seen.values())


def _functions(graph) -> dict:
    """{name: function} callable from `graph` (its own library and its outer graphs')."""
    found: dict = {}
    g = graph
    while g is not None:
        for name, fn in getattr(g, "_functions", {}).items():
            found.setdefault(name, fn)
        g = getattr(g, "outer_graph", None)
    return found


def _count(graph, by_op: collections.Counter, uncounted: collections.Counter, calls: int) -> None:
    library = _functions(graph)
    for op in _live_ops(graph):
        if op.type in _CALL_OPS:
            fn = library.get(op.get_attr("f").name)
            if fn is None:
                uncounted[f"{op.type} (function not found)"] += calls
            else:
                _count(fn.graph, by_op, uncounted, calls)
            continue
        if op.type in _LOOP_OPS:
            uncounted[op.type] += calls
            continue
        try:
            stats = ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except ValueError:  # a shape not known when traced: the op cannot be counted
            uncounted[f"{op.type} (shape unknown)"] += calls
            continue
        if stats.value:
            by_op[op.type] += int(stats.value) * calls


def graph_flops(concrete_function) -> dict:
    """TensorFlow's FLOP count of a concrete function's live ops (see the module docstring).

    Returns {"by_op": {op type: FLOPs}, "multiply_add": FLOPs of MULTIPLY_ADD_OPS,
    "total": all counted FLOPs, "uncounted": {op type: count of live ops not counted}}.
    """
    by_op: collections.Counter = collections.Counter()
    uncounted: collections.Counter = collections.Counter()
    _count(concrete_function.graph, by_op, uncounted, 1)
    return {
        "by_op": dict(by_op.most_common()),
        "multiply_add": sum(v for k, v in by_op.items() if k in MULTIPLY_ADD_OPS),
        "total": sum(by_op.values()),
        "uncounted": dict(uncounted),
    }


def profiler_float_ops(concrete_function) -> int:
    """`tf.compat.v1.profiler`'s own total ("float_ops") for the function's graph: every op,
    live or dead, and nothing inside called functions. Equal to `graph_flops(...)["total"]` on a
    graph with neither (a forward pass), which ties the two counts together."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(concrete_function.graph, options=options).total_float_ops)


def forward_concrete_function(model, batch: int):
    """The inference-mode forward pass of `model` on a float32 batch of `batch` images, traced."""
    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def step_concrete_function(step, image_shape: tuple, batch: int):
    """A training step (`nfi_tf.training.step_function`) traced on (images, int32 labels)."""
    return step.get_concrete_function((tf.TensorSpec((batch, *image_shape), tf.float32),
                                       tf.TensorSpec((batch,), tf.int32)))
