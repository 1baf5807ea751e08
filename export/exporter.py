"""`export_model`: a trained model dir -> SavedModel + ONNX (+ int8), committed only after
parity with the Keras model holds on real test images.

Every file is built under a temporary name beside its target (nfi_tf.io_utils) and swapped in
only when all checks pass, so a failed export (conversion error, parity mismatch, crash)
leaves the previous export untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable

import numpy as np

from export import metadata as metadata_lib
from export import onnx_export, parity, quantize, signature
from export.config import ExportConfig, SessionConfig, validate_export
from export.saved_model import LoadedSavedModel, write_saved_model
from export.serve import CPU, Predictor
from nfi_tf import data, io_utils, model_io
from nfi_tf import outputs as output_names

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
REPORT_FILE = "export_report.json"


@dataclasses.dataclass
class ExportResult:
    saved_model: str
    onnx: str
    int8: str | None
    parity: parity.ParityReport
    quantization: quantize.QuantizationReport | None
    report: str
    notes: list[str]

    def lines(self) -> list[str]:
        out = [f"SavedModel: {self.saved_model}", f"ONNX:       {self.onnx}"]
        if self.int8:
            out.append(f"int8 ONNX:  {self.int8}")
        out += self.parity.lines()
        if self.quantization:
            out += self.quantization.lines()
        return out + self.notes + [f"report:     {self.report}"]


def _keras_runtime(classifier) -> parity.Runtime:
    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        out = classifier(images, training=False)
        return {k: np.asarray(v) for k, v in out.items() if k != output_names.FEATURE}

    return run


def export_model(config: ExportConfig, *, download: bool = True,
                 log: Callable[[str], None] | None = None) -> ExportResult:
    """Export `config.model_dir`'s classifier; raise (changing nothing on disk) on any failure."""
    say = log or (lambda _: None)
    config = validate_export(config)
    start = time.time()
    trained = model_io.load_trained(config.model_dir, download)
    image_shape = trained.info.image_shape
    serve = signature.serving_function(trained.classifier, image_shape)
    outputs = signature.serving_outputs(trained.classifier)
    meta = metadata_lib.build_metadata(trained, outputs, config.opset)

    out_dir = config.export_dir
    sm_path = os.path.join(out_dir, SAVED_MODEL_DIR)
    onnx_path = os.path.join(out_dir, ONNX_FILE)
    int8_path = os.path.join(out_dir, INT8_FILE)
    images, _ = data.load_arrays(trained.config.data, "test", config.parity_examples, download)
    images = data.uint8_to_float(images)
    bs = config.batch_size
    reference = parity.in_batches(_keras_runtime(trained.classifier), images, bs)
    cpu_only = SessionConfig(providers=(CPU,))
    quant_report = None

    with contextlib.ExitStack() as stack:
        # Entered in this order, committed in reverse: int8, then ONNX, then the SavedModel.
        sm_tmp = stack.enter_context(io_utils.atomic_dir(sm_path))
        onnx_tmp = stack.enter_context(io_utils.atomic_path(onnx_path, suffix=".onnx"))
        say(f"writing the SavedModel ({', '.join(outputs)})")
        write_saved_model(trained.classifier, serve, sm_tmp, meta)
        say(f"converting the same tf.function to ONNX (opset {config.opset})")
        model = onnx_export.convert(serve, config.opset)
        metadata_lib.attach(model, meta)
        onnx_export.save(model, onnx_tmp)

        say(f"checking parity on {len(images)} real test images")
        runtimes = {
            "saved_model": parity.in_batches(LoadedSavedModel(sm_tmp), images, bs),
            "onnx_runtime": parity.in_batches(Predictor(onnx_tmp, cpu_only).run, images, bs),
        }
        report = parity.check(reference, runtimes, config.atol)

        if config.quantize:
            int8_tmp = stack.enter_context(io_utils.atomic_path(int8_path, suffix=".onnx"))
            calib, _ = data.load_arrays(trained.config.data, "train",
                                        config.calibration_examples, download)
            say(f"quantizing to int8 (calibration: {len(calib)} real training images)")
            quantize.quantize_int8(onnx_tmp, int8_tmp, data.uint8_to_float(calib), signature.INPUT_NAME,
                                   bs, meta)
            test_x, test_y = data.load_arrays(trained.config.data, "test",
                                              config.quantization_eval_examples, download)
            test_x = data.uint8_to_float(test_x)
            fp32 = parity.in_batches(Predictor(onnx_tmp, cpu_only).run, test_x, bs)
            int8 = parity.in_batches(Predictor(int8_tmp, cpu_only).run, test_x, bs)
            quant_report = quantize.compare(fp32, int8, test_y, len(calib))

    notes = []
    if not config.quantize and os.path.exists(int8_path):
        # An int8 model quantized from the previous fp32 export would no longer match it.
        os.remove(int8_path)
        notes.append(f"removed the stale {INT8_FILE} of an earlier export (use --quantize)")
    report_path = os.path.join(out_dir, REPORT_FILE)
    io_utils.atomic_write_json(report_path, {
        "model_dir": os.path.abspath(config.model_dir),
        "config": dataclasses.asdict(config),
        "metadata": meta,
        "files": {"saved_model": sm_path, "onnx": onnx_path,
                  "int8": int8_path if config.quantize else None},
        "parity": report.to_dict(),
        "quantization": quant_report.to_dict() if quant_report else None,
        "versions": _versions(),
        "seconds": round(time.time() - start, 1),
    })
    return ExportResult(saved_model=sm_path, onnx=onnx_path,
                        int8=int8_path if config.quantize else None, parity=report,
                        quantization=quant_report, report=report_path, notes=notes)


def _versions() -> dict[str, str]:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    import nfi_tf

    return {"nfi_tf": nfi_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
