"""`export_model`: a trained model dir -> SavedModel + ONNX (+ int8, + fp16), committed only
after parity with the Keras model holds on real test images.

The exported graph is float32 whatever precision training used (`export.precision`); a model
trained in mixed precision is also compared with itself as trained. The real images come from
the dataset or, without it, from the model dir (`export.image_source`).

Every file is built under a temporary name beside its target (nfi_tf.io_utils) and swapped in
only when all checks pass, so a failed export (conversion error, parity mismatch, crash)
leaves the previous export untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable

import numpy as np

from export import fp16, image_source, onnx_export, parity, precision, quantize, signature
from export import metadata as metadata_lib
from export.config import ExportConfig, SessionConfig, validate_export
from export.saved_model import LoadedSavedModel, write_saved_model
from export.serve import CPU, Predictor
from nfi_tf import io_utils, model_io
from nfi_tf import outputs as output_names
from nfi_tf.config import Config
from nfi_tf.errors import NfiError

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
FP16_FILE = "model.fp16.onnx"
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
    fp16: str | None = None
    fp16_report: fp16.Fp16Report | None = None
    # ONNX fp32 vs the Keras model under its training dtype policy (mixed precision only)
    as_trained: parity.ParityReport | None = None
    trained_precision: str = "off"

    def lines(self) -> list[str]:
        out = [f"SavedModel: {self.saved_model}", f"ONNX:       {self.onnx}"]
        if self.int8:
            out.append(f"int8 ONNX:  {self.int8}")
        if self.fp16:
            out.append(f"fp16 ONNX:  {self.fp16}")
        out += self.parity.lines()
        if self.as_trained:
            out.append(f"trained in {self.trained_precision}, exported as a float32 graph; "
                       f"against the model as trained:")
            out += self.as_trained.lines()[1:]
        if self.quantization:
            out += self.quantization.lines()
        if self.fp16_report:
            out += self.fp16_report.lines()
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
    if not os.path.isdir(config.model_dir):
        raise NfiError(f"model dir {config.model_dir} does not exist")
    trained_config = Config.load(os.path.join(config.model_dir, "config.json"))
    # Opened first, so that a missing dataset (int8 calibration needs the training split) is
    # reported before anything is converted, not after the parity check.
    source = image_source.open_source(config.model_dir, trained_config.data, config.data_dir,
                                      download, need_training_images=config.quantize)
    trained_precision = trained_config.train.mixed_precision
    classifier, as_trained = precision.load_for_export(
        os.path.join(config.model_dir, "model.keras"), trained_precision)
    trained = model_io.TrainedModel(trained_config, classifier, source.info, config.model_dir)
    image_shape = trained.info.image_shape
    serve = signature.serving_function(trained.classifier, image_shape)
    outputs = signature.serving_outputs(trained.classifier)
    meta = metadata_lib.build_metadata(trained, outputs, config.opset)

    out_dir = config.export_dir
    sm_path = os.path.join(out_dir, SAVED_MODEL_DIR)
    onnx_path = os.path.join(out_dir, ONNX_FILE)
    int8_path = os.path.join(out_dir, INT8_FILE)
    fp16_path = os.path.join(out_dir, FP16_FILE)
    images, _ = source.test_images(config.parity_examples)
    notes = []
    if len(images) < config.parity_examples:
        notes.append(f"parity on the {len(images)} images of {source.description} "
                     f"(fewer than --parity_examples={config.parity_examples})")
    bs = config.batch_size
    reference = parity.in_batches(_keras_runtime(trained.classifier), images, bs)
    cpu_only = SessionConfig(providers=(CPU,))
    quant_report = fp16_report = as_trained_report = None

    with contextlib.ExitStack() as stack:
        # Entered in this order, committed in reverse: fp16, int8, then ONNX, then the SavedModel.
        sm_tmp = stack.enter_context(io_utils.atomic_dir(sm_path))
        onnx_tmp = stack.enter_context(io_utils.atomic_path(onnx_path, suffix=".onnx"))
        say(f"writing the SavedModel ({', '.join(outputs)})")
        write_saved_model(trained.classifier, serve, sm_tmp, meta)
        say(f"converting the same tf.function to ONNX (opset {config.opset})")
        model = onnx_export.convert(serve, config.opset)
        metadata_lib.attach(model, meta)
        onnx_export.save(model, onnx_tmp)

        say(f"checking parity on {len(images)} real test images ({source.description})")
        onnx_out = parity.in_batches(Predictor(onnx_tmp, cpu_only).run, images, bs)
        runtimes = {
            "saved_model": parity.in_batches(LoadedSavedModel(sm_tmp), images, bs),
            "onnx_runtime": onnx_out,
        }
        report = parity.check(reference, runtimes, config.atol)
        if as_trained is not None:
            say(f"comparing with the model as trained ({trained_precision})")
            as_trained_report = parity.check_as_trained(
                parity.in_batches(_keras_runtime(as_trained), images, bs), onnx_out,
                config.as_trained_atol)

        @functools.cache
        def fp32_on_test_images():
            # The test images of the int8 and fp16 comparisons, with the fp32 model's outputs
            # (computed once when both are asked for).
            test_x, test_y = source.test_images(config.quantization_eval_examples)
            return test_x, test_y, parity.in_batches(Predictor(onnx_tmp, cpu_only).run, test_x, bs)

        if config.quantize:
            int8_tmp = stack.enter_context(io_utils.atomic_path(int8_path, suffix=".onnx"))
            calib = source.training_images(config.calibration_examples)
            say(f"quantizing to int8 (calibration: {len(calib)} real training images)")
            quantize.quantize_int8(onnx_tmp, int8_tmp, calib, signature.INPUT_NAME, bs, meta)
            test_x, test_y, fp32 = fp32_on_test_images()
            int8 = parity.in_batches(Predictor(int8_tmp, cpu_only).run, test_x, bs)
            quant_report = quantize.compare(fp32, int8, test_y, len(calib))

        if config.precision == "fp16":
            fp16_tmp = stack.enter_context(io_utils.atomic_path(fp16_path, suffix=".onnx"))
            say("converting to float16" + (" (float16 inputs and outputs)" if config.fp16_io
                                           else ""))
            fp16.convert_fp16(onnx_tmp, fp16_tmp, meta, config.fp16_io)
            test_x, test_y, fp32 = fp32_on_test_images()
            half = parity.in_batches(Predictor(fp16_tmp, cpu_only).run, test_x, bs)
            fp16_report = fp16.check(onnx_tmp, fp32, half, test_x, test_y,
                                     atol=config.fp16_atol, source=source.description,
                                     batch_size=bs, fp16_io=config.fp16_io,
                                     runner=lambda path: Predictor(path, cpu_only))

    for wanted, path, flag in ((config.quantize, int8_path, "--quantize"),
                               (config.precision == "fp16", fp16_path, "--precision=fp16")):
        if not wanted and os.path.exists(path):
            # A model converted from the previous fp32 export would no longer match it.
            os.remove(path)
            notes.append(f"removed the stale {os.path.basename(path)} of an earlier export "
                         f"(use {flag})")
    report_path = os.path.join(out_dir, REPORT_FILE)
    io_utils.atomic_write_json(report_path, {
        "model_dir": os.path.abspath(config.model_dir),
        "config": dataclasses.asdict(config),
        "metadata": meta,
        "files": {"saved_model": sm_path, "onnx": onnx_path,
                  "int8": int8_path if config.quantize else None,
                  "fp16": fp16_path if config.precision == "fp16" else None},
        "images": source.description,
        "trained_precision": trained_precision,
        "parity": report.to_dict(),
        "as_trained_parity": as_trained_report.to_dict() if as_trained_report else None,
        "quantization": quant_report.to_dict() if quant_report else None,
        "fp16": fp16_report.to_dict() if fp16_report else None,
        "versions": _versions(),
        "seconds": round(time.time() - start, 1),
    })
    return ExportResult(saved_model=sm_path, onnx=onnx_path,
                        int8=int8_path if config.quantize else None, parity=report,
                        quantization=quant_report, report=report_path, notes=notes,
                        fp16=fp16_path if config.precision == "fp16" else None,
                        fp16_report=fp16_report, as_trained=as_trained_report,
                        trained_precision=trained_precision)


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
