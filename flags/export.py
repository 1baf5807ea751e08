"""Flags of `python -m export.to_onnx`, `python -m export.predict` and
`python -m bench.serve_bench`, and the configs they build."""

from absl import flags

from export import providers as providers_lib
from export.config import (
    DEFAULT_PROVIDERS,
    PRECISIONS,
    ExportConfig,
    PredictConfig,
    SessionConfig,
    validate_export,
    validate_predict,
)
from flags import common

_E = ExportConfig.__dataclass_fields__
_S = SessionConfig.__dataclass_fields__


def define_export_flags() -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train.")
    flags.DEFINE_string("output", None, "Export directory (default: <model_dir>/export); it "
                        "receives saved_model/, model.onnx, model.int8.onnx, model.fp16.onnx, "
                        "export_report.json.")
    flags.DEFINE_integer("opset", _E["opset"].default, "ONNX opset (13-18).")
    flags.DEFINE_bool("quantize", False, "Also write model.int8.onnx (static int8 quantization "
                      "calibrated on training images) and report its accuracy change.")
    flags.DEFINE_integer("parity_examples", _E["parity_examples"].default,
                         "Real test images on which Keras, SavedModel and ONNX Runtime must agree.")
    flags.DEFINE_float("atol", _E["atol"].default, "Largest allowed |difference| of logits and "
                       "probabilities between runtimes.")
    flags.DEFINE_integer("calibration_examples", _E["calibration_examples"].default,
                         "Training images for int8 calibration.")
    flags.DEFINE_integer("quantization_eval_examples", _E["quantization_eval_examples"].default,
                         "Test images for the fp32 vs int8 (and fp16) comparison.")
    # A string checked by validate_export (not DEFINE_enum): a bad value is then the commands'
    # one-line error with exit 2, not absl's two-line parse failure.
    flags.DEFINE_string("precision", _E["precision"].default, f"{' or '.join(PRECISIONS)}. fp16: "
                        "also write model.fp16.onnx (float16 weights and compute, float32 "
                        "inputs/outputs) and report its parity and accuracy change.")
    flags.DEFINE_bool("fp16_io", False, "With --precision=fp16: float16 inputs and outputs too.")
    flags.DEFINE_float("fp16_atol", _E["fp16_atol"].default, "Largest allowed |difference| of "
                       "probabilities between the fp16 and fp32 ONNX models.")
    flags.DEFINE_float("as_trained_atol", _E["as_trained_atol"].default, "For a model trained "
                       "in mixed precision: largest allowed |difference| of probabilities "
                       "between the float32 export and the model as trained.")
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data dir holding the model's "
                        "dataset. Default: the model's own, else the real test images training "
                        "kept in the model dir (serving_examples.npz); --quantize needs the "
                        "dataset.")
    flags.DEFINE_bool("download", True, "Download the dataset when it is not in the data dir.")


def export_config_from_flags(values: flags.FlagValues) -> ExportConfig:
    return validate_export(ExportConfig(
        model_dir=values["model_dir"].value,
        output_dir=values["output"].value,
        opset=values["opset"].value,
        quantize=values["quantize"].value,
        parity_examples=values["parity_examples"].value,
        atol=values["atol"].value,
        calibration_examples=values["calibration_examples"].value,
        quantization_eval_examples=values["quantization_eval_examples"].value,
        precision=values["precision"].value,
        fp16_io=values["fp16_io"].value,
        fp16_atol=values["fp16_atol"].value,
        as_trained_atol=values["as_trained_atol"].value,
        data_dir=values["data_dir"].value,
    ))


def define_session_flags() -> None:
    flags.DEFINE_list("providers", list(DEFAULT_PROVIDERS), "ONNX Runtime execution providers in "
                      "priority order; the first this machine can create is used, CPU last. "
                      "Options follow a provider after ':', e.g. CUDAExecutionProvider:device_id=1"
                      " or TensorrtExecutionProvider:trt_fp16_enable=1,trt_engine_cache_enable=1,"
                      "trt_engine_cache_path=/tmp/trt (see docs/serving.md).")
    flags.DEFINE_integer("max_batch", 0, "Largest batch the session will see; TensorRT gets one "
                         "optimization profile for batches 1..max_batch (0: none).")
    flags.DEFINE_string("graph_optimization", _S["graph_optimization"].default,
                        "ONNX Runtime graph optimization: disable, basic, extended, all.")
    flags.DEFINE_integer("intra_op_threads", 0, "Threads inside an op (0: one per physical core).")
    flags.DEFINE_integer("inter_op_threads", 0, "Threads across ops (parallel mode only).")
    flags.DEFINE_string("execution_mode", _S["execution_mode"].default, "sequential or parallel.")


def session_config_from_flags(values: flags.FlagValues) -> SessionConfig:
    return SessionConfig(
        providers=providers_lib.group_flag_tokens(values["providers"].value),
        graph_optimization=values["graph_optimization"].value,
        intra_op_threads=values["intra_op_threads"].value,
        inter_op_threads=values["inter_op_threads"].value,
        execution_mode=values["execution_mode"].value,
        max_batch=values["max_batch"].value,
    )


def define_predict_flags() -> None:
    flags.DEFINE_string("model", None, "The .onnx file written by python -m export.to_onnx.")
    flags.mark_flag_as_required("model")
    flags.DEFINE_bool("resize", False, "Resize images of another size to the model's (bilinear); "
                      "without it a wrong size is an error.")
    flags.DEFINE_integer("top_k", 3, "How many classes to print per image.")
    define_session_flags()


def predict_config_from_flags(values: flags.FlagValues, images: list[str]) -> PredictConfig:
    return validate_predict(PredictConfig(
        model=values["model"].value,
        images=tuple(images),
        resize=values["resize"].value,
        top_k=values["top_k"].value,
        session=session_config_from_flags(values),
    ))


def define_serve_bench_flags() -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train.")
    flags.DEFINE_string("export_dir", None, "Its export (default: <model_dir>/export); exported "
                        "with --quantize --precision=fp16 first when incomplete.")
    flags.DEFINE_integer("repeats", 200, "Timed batch-1 calls (after --warmup calls).")
    flags.DEFINE_integer("warmup", 20, "Untimed calls before timing.")
    flags.DEFINE_integer("throughput_batch", 256, "Batch size of the throughput measurement.")
    flags.DEFINE_integer("throughput_repeats", 10, "Timed calls at the throughput batch size.")
    flags.DEFINE_string("output", None, "JSON file (default: <export_dir>/serve_bench.json).")


def serve_bench_kwargs_from_flags(values: flags.FlagValues) -> dict:
    for name in ("repeats", "throughput_batch", "throughput_repeats"):
        if values[name].value < 1:
            from nfi_tf.errors import NfiError

            raise NfiError(f"{name} must be >= 1. Received: {name}={values[name].value}")
    return {"model_dir": values["model_dir"].value, "export_dir": values["export_dir"].value,
            "repeats": values["repeats"].value, "warmup": values["warmup"].value,
            "throughput_batch": values["throughput_batch"].value,
            "throughput_repeats": values["throughput_repeats"].value,
            "output": values["output"].value}
