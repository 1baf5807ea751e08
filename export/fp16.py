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

On GPUs (CUDA, TensorRT) float16 runs on tensor cores; on this CPU, ORT runs most float16 ops by
casting to float32 around them, so it is a size and GPU option, not a CPU speed-up.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from export import metadata as metadata_lib
from export.parity import argmax_margins
from nfi_tf import outputs
from nfi_tf.errors import NfiError


class Fp16Error(NfiError):
    """The float16 model does not reproduce the float32 one within tolerance."""


def convert_fp16(fp32_path: str, out_path: str, metadata: dict[str, str], fp16_io: bool) -> None:
    """Write the float16 version of `fp32_path` to `out_path`, metadata included."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(fp32_path))
    # Symbolic shape inference is for ORT's fused transformer ops; onnx's own suffices here.
    model.convert_float_to_float16(use_symbolic_shape_infer=False, keep_io_types=not fp16_io)
    model.topological_sort()
    converted = model.model
    onnx.checker.check_model(converted, full_check=True)
    metadata_lib.attach(converted, {
        **metadata, "input_dtype": "float16" if fp16_io else metadata["input_dtype"],
        "precision": "fp16 (onnxruntime.transformers float16 converter; "
                     + ("float16" if fp16_io else "float32") + " inputs and outputs)"})
    onnx.save_model(converted, out_path)


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
    near_tie_route_flips: int = 0  # routes that flipped where the fp32 argmax margin is a rounding's width
    unexplained_route_flips: tuple = ()  # indices of flips no rounding explains (a conversion bug)

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
                f"{self.atol:g} on {outputs.PROBABILITIES})"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(fp32: dict[str, np.ndarray], fp16: dict[str, np.ndarray], labels: np.ndarray,
            atol: float, source: str) -> Fp16Report:
    """fp16 vs fp32 ONNX Runtime outputs on the same images; raise Fp16Error when the fp16
    model overflows (non-finite outputs) or its probabilities differ beyond `atol`."""
    floats = [k for k in outputs.SERVED_FLOAT if k in fp32]
    bad = [k for k in floats if not np.isfinite(fp16[k]).all()]
    if bad:
        raise Fp16Error(f"the fp16 model gives non-finite {', '.join(bad)} (float16 overflows "
                        f"above 65504); keep the fp32 model")
    p32, p16 = np.argmax(fp32[outputs.ROUTED], -1), np.argmax(fp16[outputs.ROUTED], -1)
    # Half precision moves logits by ~1e-3: where two of the argmaxes routing reads are that
    # close, the route (and so the routed output) may flip. Such a flip is rounding, judged as
    # in `export.parity.check_as_trained` (margin within twice the largest head-logit
    # difference); the outputs are compared on the images whose route agrees.
    same = fp32[outputs.ROUTE] == fp16[outputs.ROUTE]
    heads = [k for k in floats if k not in (outputs.ROUTED, outputs.PROBABILITIES)]
    head_diff = max((float(np.max(np.abs(fp16[k].astype(np.float64) - fp32[k]))) for k in heads),
                    default=0.0)
    flips = np.flatnonzero(~same)
    margins = argmax_margins(fp32)
    unexplained = tuple(int(i) for i in flips if margins[i] > 2 * head_diff)
    kept = same if same.any() else np.ones_like(same)
    report = Fp16Report(
        examples=len(labels), source=source, atol=atol,
        fp32_accuracy=float(np.mean(p32 == labels)), fp16_accuracy=float(np.mean(p16 == labels)),
        prediction_agreement=float(np.mean(p32 == p16)),
        route_agreement=float(np.mean(fp32[outputs.ROUTE] == fp16[outputs.ROUTE])),
        max_abs_diff={k: float(np.max(np.abs(fp16[k][kept].astype(np.float64) - fp32[k][kept])))
                      for k in floats},
        near_tie_route_flips=len(flips) - len(unexplained), unexplained_route_flips=unexplained)
    if not report.ok:
        raise Fp16Error("fp16 parity failed: " + " | ".join(report.lines()))
    return report
