"""int8: `model.int8.onnx`, ONNX Runtime static quantization calibrated on real training images
(`--precision=int8`, or `--quantize`, its alias).

Only the backbone is quantized (QDQ, per-channel int8 weights). The heads, part scores and
routing stay float32: routing compares three argmaxes, and quantizing the 10-way heads moved
routes and predictions several times more than quantizing the whole backbone did, for a
negligible share of the compute (measured on the MNIST SmallCNN; see the export report).
Its check reports the accuracy change and the class and route agreement with the fp32 model on
real test images (`quantization` in export_report.json); it refuses nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from export import metadata as metadata_lib
from export import signature
from export.precisions.job import ExportJob
from export.precisions.registry import Precision, PrecisionSpec
from nfi_tf import outputs
from nfi_tf.errors import NfiError

FILE = "model.int8.onnx"
# What the training images are for, in the error when the dataset is missing.
CALIBRATION = "int8 calibration (--quantize)"

_QUANTIZED_OPS = ["Conv", "MatMul", "Gemm", "MaxPool", "Relu"]
# Keras layer names of everything after the feature (tf2onnx keeps them as path segments).
_FLOAT_LAYERS = re.compile(r"(^|/)(" + "|".join(map(re.escape, outputs.FLOAT_LAYERS)) + r")(_\d+)?/")


class ImageBatches(CalibrationDataReader):
    """Feeds calibration images to the quantizer, one batch per call."""

    def __init__(self, images: np.ndarray, input_name: str, batch_size: int):
        self.images, self.input_name, self.batch_size = images, input_name, batch_size
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.images):
            return None
        batch = self.images[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next = 0


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes of the heads, routing and softmax: kept in float32."""
    names = [n.name for n in model.graph.node if _FLOAT_LAYERS.search(n.name)]
    if not names:
        raise NfiError("found no head/routing nodes to keep in float32: the graph's node names "
                       "no longer carry the Keras layer names (heads, routing)")
    return names


def quantize_int8(fp32_path: str, out_path: str, calibration_images: np.ndarray,
                  input_name: str, batch_size: int, metadata: dict[str, str]) -> None:
    """Write the int8 (QDQ) version of `fp32_path` to `out_path`, metadata included."""
    with tempfile.TemporaryDirectory(prefix="nfi_quant_") as tmp:
        # Shape inference + ORT's fusions first, so the quantizer sees Conv/Gemm with bias.
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(fp32_path, prepared)
        keep_float = float_nodes(onnx.load(prepared))
        quantize_static(
            prepared, out_path, ImageBatches(calibration_images, input_name, batch_size),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=_QUANTIZED_OPS, nodes_to_exclude=keep_float)
    model = onnx.load(out_path)
    metadata_lib.attach(model, {**metadata, "quantization": "int8 static QDQ, per-channel "
                                "weights, MinMax calibration on training images; heads float32"})
    onnx.save_model(model, out_path)


@dataclasses.dataclass
class QuantizationReport:
    examples: int
    calibration_examples: int
    fp32_accuracy: float
    int8_accuracy: float
    prediction_agreement: float  # same class from both models
    route_agreement: float

    def lines(self) -> list[str]:
        change = 100 * (self.int8_accuracy - self.fp32_accuracy)
        return [f"int8 (calibrated on {self.calibration_examples} training images) on "
                f"{self.examples} real test images: accuracy fp32 {100 * self.fp32_accuracy:.2f}%"
                f" -> int8 {100 * self.int8_accuracy:.2f}% ({change:+.2f} points); same class "
                f"{100 * self.prediction_agreement:.2f}%, same route "
                f"{100 * self.route_agreement:.2f}%"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray], labels: np.ndarray,
            calibration_examples: int) -> QuantizationReport:
    p32, p8 = np.argmax(fp32[outputs.ROUTED], -1), np.argmax(int8[outputs.ROUTED], -1)
    return QuantizationReport(
        examples=len(labels), calibration_examples=calibration_examples,
        fp32_accuracy=float(np.mean(p32 == labels)), int8_accuracy=float(np.mean(p8 == labels)),
        prediction_agreement=float(np.mean(p32 == p8)),
        route_agreement=float(np.mean(fp32[outputs.ROUTE] == int8[outputs.ROUTE])))


# === The registered precision ===

def convert(job: ExportJob, out_path: str) -> None:
    calibration = job.training_images(job.config.calibration_examples, CALIBRATION)
    job.say(f"quantizing to int8 (calibration: {len(calibration)} real training images)")
    quantize_int8(job.reference_path, out_path, calibration, signature.INPUT_NAME,
                  job.batch_size, job.metadata)


def check(job: ExportJob, path: str) -> QuantizationReport:
    _, labels = job.test_set
    calibration = job.training_images(job.config.calibration_examples, CALIBRATION)
    return compare(job.reference_test_outputs(), job.test_outputs(path), labels, len(calibration))


SPEC = PrecisionSpec(
    name=Precision.INT8, convert=convert, check=check, file=FILE, report_key="quantization",
    training_images=CALIBRATION,
    summary="also model.int8.onnx (static int8 backbone calibrated on real training images, "
            "float32 heads and routing) with its accuracy change; --quantize is the same")
