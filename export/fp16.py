"""Optional float16 model: the fp32 ONNX graph converted by ONNX Runtime's own fp16 converter.

`onnxruntime.transformers.onnx_model.OnnxModel.convert_float_to_float16` (shipped inside the
pinned onnxruntime-gpu, so no new dependency): weights and compute in float16, float32 graph
inputs and outputs unless `fp16_io`, ops without a float16 kernel kept in float32 by its default
block list, then a topological sort (the converter appends its Cast nodes at the end of the node
list, which ORT accepts and the ONNX checker does not). The whole graph is converted, heads and
routing included: keeping the heads in float32 through the converter's `node_block_list` made
it emit one identically named Cast per consumer of the feature tensor (an invalid graph), both in
this converter and in onnxconverter-common 1.16 (which also mistypes a graph output that other
nodes read, our `tradeoff`). See BUILD_NOTES.md.

A route that differs between the fp32 and fp16 models is judged on the scores the route reads
(`outputs.ROUTING_EVIDENCE`: tradeoff, rob, nr; rob and nr are no served outputs): when routes
flip, check-only copies of both graphs expose the inputs of the routing ArgMax nodes as extra
outputs (never in the served file), and a flip is rounding only if every routing argmax that
changed sat on a near-tie (its fp32 margin within twice the largest fp16 change of those scores
on the images whose route agrees).

On GPUs (CUDA, TensorRT) float16 runs on tensor cores; on this CPU, ORT runs most float16 ops by
casting to float32 around them, so it is a size and GPU option, not a CPU speed-up.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import onnx
from onnx import helper

from export import metadata as metadata_lib
from export import parity
from nfi_tf import outputs
from nfi_tf.errors import NfiError


class Fp16Error(NfiError):
    """The float16 model does not reproduce the float32 one within tolerance."""


def convert_fp16(fp32_path: str, out_path: str, metadata: dict[str, str], fp16_io: bool) -> None:
    """Write the float16 version of `fp32_path` to `out_path`, metadata included."""
    converted = _to_fp16(onnx.load(fp32_path), fp16_io)
    metadata_lib.attach(converted, {
        **metadata, "input_dtype": "float16" if fp16_io else metadata["input_dtype"],
        "precision": "fp16 (onnxruntime.transformers float16 converter; "
                     + ("float16" if fp16_io else "float32") + " inputs and outputs)"})
    onnx.save_model(converted, out_path)


def _to_fp16(model: onnx.ModelProto, fp16_io: bool) -> onnx.ModelProto:
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(model)
    # Symbolic shape inference is for ORT's fused transformer ops; onnx's own suffices here.
    wrapped.convert_float_to_float16(use_symbolic_shape_infer=False, keep_io_types=not fp16_io)
    wrapped.topological_sort()
    converted = wrapped.model
    onnx.checker.check_model(converted, full_check=True)
    return converted


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


def _name_scores(raw: list[np.ndarray], served: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name the exposed scores tradeoff/rob/nr: tradeoff is the one equal to the served
    `tradeoff`; rob and nr are the order that reproduces the graph's own routes."""
    if len(raw) != 3:
        raise Fp16Error(f"expected the route to read 3 argmaxes (tradeoff, rob, nr), found "
                        f"{len(raw)}")
    t = int(np.argmin([np.max(np.abs(s - served[outputs.TRADEOFF])) for s in raw]))
    a, b = (raw[k] for k in range(3) if k != t)
    route = served[outputs.ROUTE]
    if np.sum(route_of(raw[t], b, a) == route) > np.sum(route_of(raw[t], a, b) == route):
        a, b = b, a
    return {outputs.TRADEOFF: raw[t], outputs.ROB: a, outputs.NR: b}


def routing_scores(fp32_path: str, images: np.ndarray, batch_size: int, fp16_io: bool,
                   runner) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The routing scores (tradeoff, rob, nr) of the fp32 graph at `fp32_path` and of its fp16
    conversion, on `images`, from check-only copies exposing them; `runner(path)` opens a model
    (a `Predictor`, so the sessions are set up as the served ones)."""
    exposed, names = with_routing_scores(onnx.load(fp32_path))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in (("fp32", exposed), ("fp16", _to_fp16(exposed, fp16_io))):
            path = os.path.join(tmp, f"routing_scores.{label}.onnx")
            onnx.save_model(model, path)
            got = parity.in_batches(runner(path).run, images, batch_size)
            out.append(_name_scores([got[n].astype(np.float32) for n in names], got))
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


@dataclasses.dataclass
class Fp16Report:
    examples: int
    source: str  # where the images came from (the test split, or the model dir's examples)
    atol: float  # on probabilities
    fp32_accuracy: float
    fp16_accuracy: float
    prediction_agreement: float
    route_agreement: float
    max_abs_diff: dict[str, float]  # output -> max |fp16 - fp32 ONNX| on the images whose route agrees
    near_tie_route_flips: int = 0  # flips whose deciding routing margin is a rounding's width
    unexplained_route_flips: tuple = ()  # indices of flips no rounding explains (a conversion bug)
    routing_scores: tuple = ()  # the scores the flips were judged on (tradeoff, rob, nr)
    routing_score_change: float = 0.0  # their max |fp16 - fp32| on the images whose route agrees
    route_flips: list = dataclasses.field(default_factory=list)  # the first 20, with margins

    @property
    def ok(self) -> bool:
        return self.max_abs_diff[outputs.PROBABILITIES] <= self.atol and not self.unexplained_route_flips

    def lines(self) -> list[str]:
        change = 100 * (self.fp16_accuracy - self.fp32_accuracy)
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in self.max_abs_diff.items())
        return [f"fp16 on {self.examples} real test images ({self.source}): accuracy fp32 "
                f"{100 * self.fp32_accuracy:.2f}% -> fp16 {100 * self.fp16_accuracy:.2f}% "
                f"({change:+.2f} points); same class {100 * self.prediction_agreement:.2f}%, "
                f"same route {100 * self.route_agreement:.2f}% ({self.near_tie_route_flips} flips "
                f"on near-ties, {len(self.unexplained_route_flips)} unexplained)",
                f"  fp16 vs fp32 ONNX, images with the same route: max abs diff {diffs} (atol "
                f"{self.atol:g} on {outputs.PROBABILITIES})"] + self._flip_lines()

    def _flip_lines(self) -> list[str]:
        if not self.route_flips:
            return []
        shown = "; ".join(
            f"image {f['index']} route {f['route_fp32']}->{f['route_fp16']} "
            + (f"({f['score']} margin {f['margin']:.2e})" if f["score"] else
               "(no routing argmax changed)")
            + ("" if f["scores_reproduce_routes"] else " [scores do not reproduce the routes]")
            for f in self.route_flips[:5])
        return [f"  route flips judged on {', '.join(self.routing_scores)}: near-tie when the "
                f"margin <= 2 x {self.routing_score_change:.2e} (their largest fp16 change); "
                f"{shown}"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(fp32: dict[str, np.ndarray], fp16: dict[str, np.ndarray], labels: np.ndarray,
            atol: float, source: str,
            scores: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
            ) -> Fp16Report:
    """fp16 vs fp32 ONNX Runtime outputs on the same images; raise Fp16Error (one line) when the
    fp16 model overflows (non-finite outputs), its probabilities differ beyond `atol` on the
    images whose route agrees, or a route flips that rounding does not explain.

    `scores`: (fp32, fp16) routing scores {tradeoff, rob, nr} on the same images
    (`routing_scores`); without them flips are judged on the served scores alone (tradeoff),
    which cannot explain a flip decided by rob or nr."""
    floats = [k for k in outputs.SERVED_FLOAT if k in fp32]
    bad = [k for k in floats if not np.isfinite(fp16[k]).all()]
    if bad:
        raise Fp16Error(f"the fp16 model gives non-finite {', '.join(bad)} (float16 overflows "
                        f"above 65504); keep the fp32 model")
    p32, p16 = np.argmax(fp32[outputs.ROUTED], -1), np.argmax(fp16[outputs.ROUTED], -1)
    # Half precision moves scores by ~1e-3: where an argmax routing reads is that close, the
    # route (and so the routed output) may flip. Such a flip is rounding (`judge_route_flips`);
    # the outputs are compared on the images whose route agrees.
    scores32, scores16 = scores or ({k: fp32[k] for k in outputs.ROUTING_EVIDENCE if k in fp32},
                                    {k: fp16[k] for k in outputs.ROUTING_EVIDENCE if k in fp16})
    same = fp32[outputs.ROUTE] == fp16[outputs.ROUTE]
    judged = judge_route_flips(scores32, scores16, fp32[outputs.ROUTE], fp16[outputs.ROUTE])
    kept = same if same.any() else np.ones_like(same)
    report = Fp16Report(
        examples=len(labels), source=source, atol=atol,
        fp32_accuracy=float(np.mean(p32 == labels)), fp16_accuracy=float(np.mean(p16 == labels)),
        prediction_agreement=float(np.mean(p32 == p16)), route_agreement=float(np.mean(same)),
        max_abs_diff={k: float(np.max(np.abs(fp16[k][kept].astype(np.float64) - fp32[k][kept])))
                      for k in floats},
        near_tie_route_flips=len(judged.near_ties), unexplained_route_flips=judged.unexplained,
        routing_scores=judged.scores, routing_score_change=judged.score_change,
        route_flips=judged.flips[:20])
    if not report.ok:
        raise Fp16Error("fp16 parity failed: " + " | ".join(report.lines()))
    return report


def check(fp32_path: str, fp32: dict[str, np.ndarray], fp16: dict[str, np.ndarray],
          images: np.ndarray, labels: np.ndarray, *, atol: float, source: str, batch_size: int,
          fp16_io: bool, runner) -> Fp16Report:
    """`compare`, reading the routing scores from check-only graphs when some route flipped
    (rob and nr are no served outputs; the extra runs cost nothing when no route flips)."""
    scores = None
    if np.any(fp32[outputs.ROUTE] != fp16[outputs.ROUTE]):
        scores = routing_scores(fp32_path, images, batch_size, fp16_io, runner)
    return compare(fp32, fp16, labels, atol, source, scores)
