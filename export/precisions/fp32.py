"""fp32, the reference precision: `model.onnx`, the serving tf.function converted by tf2onnx.

Always written (every other precision is converted from it and compared with it), and checked
first: on real test images, its ONNX Runtime outputs and the SavedModel's (written from the same
tf.function) must reproduce the Keras model's within `--atol`, with identical routes
(`export.parity`). Its report is `parity` in export_report.json.
"""

from __future__ import annotations

from export import metadata as metadata_lib
from export import onnx_export, parity
from export.precisions.job import ExportJob
from export.precisions.registry import Precision, PrecisionSpec

FILE = "model.onnx"
ONNX_RUNTIME = "onnx_runtime"  # its runtime's name in the parity report


def convert(job: ExportJob, out_path: str) -> None:
    job.say(f"converting the same tf.function to ONNX (opset {job.config.opset})")
    model = onnx_export.convert(job.serve, job.config.opset)
    metadata_lib.attach(model, job.metadata)
    onnx_export.save(model, out_path)


def check(job: ExportJob, path: str) -> parity.ParityReport:
    job.say(f"checking parity on {len(job.parity_images)} real test images "
            f"({job.source.description})")
    runtimes = {**job.other_runtimes, ONNX_RUNTIME: job.parity_outputs(path)}
    return parity.check(job.keras_outputs, runtimes, job.config.atol)


SPEC = PrecisionSpec(
    name=Precision.FP32, convert=convert, check=check, file=FILE, title="ONNX", files_key="onnx",
    report_key="parity", reference=True,
    summary="model.onnx only (always written; every other precision is converted from it)")
