"""Route flips between the reference (fp32) ONNX model and a lower-precision conversion of it:
which ones rounding explains.

A route is three argmaxes (`nfi_tf.models.heads.routes`), so a conversion that moves scores by a
rounding's width may flip the route of an image whose scores sit on a near-tie. Such a flip is
judged on the scores the route reads (`outputs.ROUTING_EVIDENCE`: tradeoff, rob, nr; rob and nr
are no served outputs): check-only copies of both graphs expose the inputs of the routing ArgMax
nodes as extra outputs (never in a served file), and a flip is rounding only if every routing
argmax that changed sat on a near-tie (its fp32 margin within twice the largest change of those
scores on the images whose route agrees). Written for fp16 (`export.precisions.fp16`), whose
report keeps the flips with these keys; any precision converted from the fp32 graph can use it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from export import parity
from nfi_tf import outputs
from nfi_tf.errors import NfiError

SCORE_OUTPUT = "routing_score_{}"  # check-only graph outputs, never in a served file


def route_argmax_inputs(graph: onnx.GraphProto) -> list[str]:
    """The tensors the `route` output takes an argmax of (the routing scores), in node order."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    seen, stack, found = set(), [outputs.ROUTE], []
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in seen:
            continue
        seen.add(i)
        if graph.node[i].op_type == "ArgMax":
            found.append(i)
        stack.extend(graph.node[i].input)
    return [graph.node[i].input[0] for i in sorted(found)]


def with_routing_scores(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` whose routing scores are extra float outputs `routing_score_<k>`."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    names = []
    for k, tensor in enumerate(route_argmax_inputs(exposed.graph)):
        name = SCORE_OUTPUT.format(k)
        exposed.graph.node.append(helper.make_node("Identity", [tensor], [name], name=name))
        exposed.graph.output.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        names.append(name)
    return exposed, names


def route_of(tradeoff: np.ndarray, rob: np.ndarray, nr: np.ndarray) -> np.ndarray:
    """`nfi_tf.models.heads.routes` in NumPy, from the three score arrays."""
    y, y_rob, y_nr = (np.argmax(s, -1) for s in (tradeoff, rob, nr))
    return np.where((y == y_rob) & (y == y_nr), outputs.ROUTE_BENIGN,
                    np.where(y == y_rob, outputs.ROUTE_ADVERSARIAL, outputs.ROUTE_TRADEOFF))


def name_scores(raw: list[np.ndarray], served: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name the exposed scores tradeoff/rob/nr: tradeoff is the one equal to the served
    `tradeoff`; rob and nr are the order that reproduces the graph's own routes."""
    if len(raw) != 3:
        raise NfiError(f"expected the route to read 3 argmaxes (tradeoff, rob, nr), found "
                        f"{len(raw)}")
    t = int(np.argmin([np.max(np.abs(s - served[outputs.TRADEOFF])) for s in raw]))
    a, b = (raw[k] for k in range(3) if k != t)
    route = served[outputs.ROUTE]
    if np.sum(route_of(raw[t], b, a) == route) > np.sum(route_of(raw[t], a, b) == route):
        a, b = b, a
    return {outputs.TRADEOFF: raw[t], outputs.ROB: a, outputs.NR: b}


def routing_scores(fp32_path: str, images: np.ndarray, batch_size: int,
                   convert: Callable[[onnx.ModelProto], onnx.ModelProto],
                   runner) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The routing scores (tradeoff, rob, nr) of the fp32 graph at `fp32_path` and of its
    conversion by `convert` (a graph -> graph function), on `images`, from check-only copies
    exposing them; `runner(path)` opens a model (a `Predictor`, so the sessions are set up as
    the served ones)."""
    exposed, names = with_routing_scores(onnx.load(fp32_path))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in (("reference", exposed), ("converted", convert(exposed))):
            path = os.path.join(tmp, f"routing_scores.{label}.onnx")
            onnx.save_model(model, path)
            got = parity.in_batches(runner(path).run, images, batch_size)
            out.append(name_scores([got[n].astype(np.float32) for n in names], got))
    return out[0], out[1]


@dataclasses.dataclass
class FlipJudgement:
    """Which route flips rounding explains, read from the scores the route reads."""
    scores: tuple  # names of the routing scores judged
    score_change: float  # max |fp16 - fp32| of those scores on the images whose route agrees
    near_ties: tuple  # image indices
    unexplained: tuple  # image indices
    flips: list  # per flip: index, fp32/fp16 route, deciding score and its fp32 margin


def judge_route_flips(scores32: dict[str, np.ndarray], scores16: dict[str, np.ndarray],
                      route32: np.ndarray, route16: np.ndarray) -> FlipJudgement:
    """A flip is rounding when every routing argmax that changed had an fp32 margin (its fp32
    winner minus its fp16 winner, in fp32) within twice the largest fp16 change of the routing
    scores on the images whose route agrees; a flip no changed argmax accounts for (or that the
    scores do not reproduce) is unexplained. Judged on the scores in both dicts."""
    names = tuple(k for k in outputs.ROUTING_EVIDENCE if k in scores32 and k in scores16)
    flipped = route32 != route16
    kept = ~flipped if (~flipped).any() else np.ones_like(flipped)
    change = max((float(np.max(np.abs(scores16[k][kept].astype(np.float64) - scores32[k][kept])))
                  for k in names), default=0.0)
    complete = set(names) == set(outputs.ROUTING_EVIDENCE)
    near, unexplained, flips = [], [], []
    for i in np.flatnonzero(flipped):
        i = int(i)
        a32 = {k: int(np.argmax(scores32[k][i])) for k in names}
        a16 = {k: int(np.argmax(scores16[k][i])) for k in names}
        margins = {k: float(scores32[k][i, a32[k]]) - float(scores32[k][i, a16[k]])
                   for k in names if a32[k] != a16[k]}
        reproduced = complete and all(
            int(route_of(*(s[k][i:i + 1] for k in outputs.ROUTING_EVIDENCE))[0]) == int(r[i])
            for s, r in ((scores32, route32), (scores16, route16)))
        deciding = max(margins, key=margins.get) if margins else None
        explained = reproduced and deciding is not None and margins[deciding] <= 2 * change
        (near if explained else unexplained).append(i)
        flips.append({"index": i, "route_fp32": int(route32[i]), "route_fp16": int(route16[i]),
                      "score": deciding, "margin": margins.get(deciding),
                      "scores_reproduce_routes": reproduced})
    return FlipJudgement(scores=names, score_change=change, near_ties=tuple(near),
                         unexplained=tuple(unexplained), flips=flips)
