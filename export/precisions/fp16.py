"""fp16: `model.fp16.onnx`, the fp32 ONNX graph converted by ONNX Runtime's own fp16 converter.

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
(`export.precisions.route_flips`): a flip is rounding only if every routing argmax that changed
sat on a near-tie. The model is refused (`Fp16Error`) when it overflows, when a probability
moves by more than `--fp16_atol` on the images whose route agrees, or when a route flips that
rounding does not explain.

On GPUs (CUDA, TensorRT) float16 runs on tensor cores; on this CPU, ORT runs most float16 ops by
casting to float32 around them, so it is a size and GPU option, not a CPU speed-up.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import onnx

from export import metadata as metadata_lib
from export.precisions import route_flips
from export.precisions.job import ExportJob
from export.precisions.registry import Precision, PrecisionSpec
from nfi_tf import outputs
from nfi_tf.errors import NfiError

FILE = "model.fp16.onnx"


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
    # route (and so the routed output) may flip. Such a flip is rounding (`route_flips`);
    # the outputs are compared on the images whose route agrees.
    scores32, scores16 = scores or ({k: fp32[k] for k in outputs.ROUTING_EVIDENCE if k in fp32},
                                    {k: fp16[k] for k in outputs.ROUTING_EVIDENCE if k in fp16})
    same = fp32[outputs.ROUTE] == fp16[outputs.ROUTE]
    judged = route_flips.judge_route_flips(scores32, scores16, fp32[outputs.ROUTE], fp16[outputs.ROUTE])
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


def routing_scores(fp32_path: str, images: np.ndarray, batch_size: int, fp16_io: bool,
                   runner) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The routing scores of the fp32 graph at `fp32_path` and of its fp16 conversion on
    `images` (`route_flips.routing_scores`)."""
    return route_flips.routing_scores(fp32_path, images, batch_size,
                                      functools.partial(_to_fp16, fp16_io=fp16_io), runner)


# === The registered precision ===

def convert(job: ExportJob, out_path: str) -> None:
    fp16_io = job.config.fp16_io
    job.say("converting to float16" + (" (float16 inputs and outputs)" if fp16_io else ""))
    convert_fp16(job.reference_path, out_path, job.metadata, fp16_io)


def check(job: ExportJob, path: str) -> Fp16Report:
    """`compare` on the test images, reading the routing scores from check-only graphs when some
    route flipped (rob and nr are no served outputs; the extra runs cost nothing otherwise)."""
    images, labels = job.test_set
    fp32, fp16 = job.reference_test_outputs(), job.test_outputs(path)
    scores = None
    if np.any(fp32[outputs.ROUTE] != fp16[outputs.ROUTE]):
        scores = routing_scores(job.reference_path, images, job.batch_size, job.config.fp16_io,
                                job.open_model)
    return compare(fp32, fp16, labels, job.config.fp16_atol, job.source.description, scores)


SPEC = PrecisionSpec(
    name=Precision.FP16, convert=convert, check=check, file=FILE,
    summary="also model.fp16.onnx (float16 weights and compute, float32 inputs/outputs unless "
            "--fp16_io), refused when its probabilities move beyond --fp16_atol or a route "
            "flips that rounding does not explain")
