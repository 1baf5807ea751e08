"""Configs of the export and predict commands: frozen dataclasses built once from flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from export import providers as providers_lib
from export.precisions import registry as precision_registry
from export.precisions.registry import Precision
from nfi_tf.errors import check

# Priority order: the first one that this machine can actually create wins.
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
EXECUTION_MODES = ("sequential", "parallel")


@dataclass(frozen=True)
class SessionConfig:
    """ONNX Runtime session settings; the defaults are the fast ones on CPU, no flags needed."""

    # Each entry a provider name, optionally with options: "CUDAExecutionProvider:device_id=1",
    # "TensorrtExecutionProvider:trt_fp16_enable=1,trt_engine_cache_enable=1" (export.providers).
    providers: tuple[str, ...] = field(default=DEFAULT_PROVIDERS, metadata={
        "help": "ONNX Runtime execution providers in priority order; the first this machine can "
                "create is used, CPU last. Options follow a provider after ':', e.g. "
                "CUDAExecutionProvider:device_id=1 or TensorrtExecutionProvider:trt_fp16_enable=1,"
                "trt_engine_cache_enable=1,trt_engine_cache_path=/tmp/trt (see docs/serving.md)."})
    # constant folding and node fusions (conv + activation...)
    graph_optimization: str = field(default="all", metadata={
        "help": f"ONNX Runtime graph optimization: {', '.join(GRAPH_OPTIMIZATIONS)}."})
    # 0: one thread per physical core this process may use (`export.serve.resolve_session`).
    intra_op_threads: int = field(default=0, metadata={
        "help": "Threads inside an op (0: one per physical core)."})
    inter_op_threads: int = field(default=0, metadata={  # read in "parallel" execution mode only
        "help": "Threads across ops (parallel mode only)."})
    # "parallel" only helps graphs with parallel branches
    execution_mode: str = field(default="sequential", metadata={
        "help": f"{' or '.join(EXECUTION_MODES)}."})
    # Idle worker threads spin briefly before sleeping: the lowest batch-1 latency on dedicated
    # cores (ONNX Runtime's default too); off is kinder to a machine shared with other work.
    allow_spinning: bool = True
    log_severity: int = 3  # 0 verbose .. 4 fatal; 3 hides the per-node placement warnings
    # Single-image requests on CPU run through an IO binding whose output buffers are allocated
    # once (`Predictor._run_bound`): at batch 1 the call is a fraction of a millisecond and
    # ORT's per-call output allocation is a visible part of it. Larger batches never bind.
    io_binding_batch1: bool = True
    # > 0: the largest batch this session will see. TensorRT then gets one optimization profile
    # for batches 1..max_batch (built once) instead of rebuilding its engine for each new size.
    max_batch: int = field(default=0, metadata={
        "help": "Largest batch the session will see; TensorRT gets one optimization profile for "
                "batches 1..max_batch (0: none)."})
    # On a GPU provider every request runs through an IO binding: the input is copied to the
    # device once and the outputs are allocated there (`Predictor.run_on_device` keeps them there).
    device_io_binding: bool = True

    def provider_specs(self) -> tuple[providers_lib.ProviderSpec, ...]:
        return providers_lib.parse_all(self.providers)


@dataclass(frozen=True)
class ExportConfig:
    model_dir: str
    output_dir: str | None = field(default=None, metadata={
        "flag": "output", "none": "<model_dir>/export",
        "help": "Export directory; it receives saved_model/, model.onnx, model.int8.onnx, "
                "model.fp16.onnx, export_report.json."})
    opset: int = field(default=17, metadata={"help": "ONNX opset (13-18)."})
    # The alias of int8 from before --precision named it (`precisions`).
    quantize: bool = field(default=False, metadata={
        "help": "Also write model.int8.onnx (static int8 quantization calibrated on training "
                "images) and report its accuracy change: the same as adding int8 to "
                "--precision."})
    parity_examples: int = field(default=256, metadata={
        "help": "Real test images on which Keras, SavedModel and ONNX Runtime must agree."})
    atol: float = field(default=1e-4, metadata={
        "help": "Largest allowed |difference| of logits and probabilities between runtimes."})
    calibration_examples: int = field(default=512, metadata={
        "help": "Training images for int8 calibration."})
    quantization_eval_examples: int = field(default=1000, metadata={
        "help": "Test images on which each precision beyond fp32 (int8, fp16) is compared with "
                "fp32."})
    batch_size: int = 64
    # Comma-separated names of registered precisions (export.precisions), read through
    # `precisions`. A string checked by validate_export (not an enum flag): a bad value is then
    # the commands' one-line error with exit 2, not absl's two-line parse failure, and a
    # precision registered after this module was imported is accepted too.
    precision: str = field(default=Precision.FP32.value, metadata={
        "help": "Export precisions, one or several comma-separated: "
                + "; ".join(f"{s.name}: {s.summary}" for s in precision_registry.specs())
                + ". Each is checked on real test images (fp32 against Keras and the SavedModel, "
                  "the others against fp32) and reported in export_report.json."})
    fp16_io: bool = field(default=False, metadata={
        "help": "With --precision=fp16: float16 inputs and outputs too."})
    # fp16 and mixed-precision parity is judged on probabilities (bounded, so one tolerance fits
    # every model): fp16 rounds at 2^-11 relative, bfloat16 at 2^-8.
    fp16_atol: float = field(default=1e-2, metadata={
        "help": "Largest allowed |difference| of probabilities between the fp16 and fp32 ONNX "
                "models."})
    as_trained_atol: float = field(default=5e-2, metadata={
        "help": "For a model trained in mixed precision: largest allowed |difference| of "
                "probabilities between the float32 export and the model as trained."})
    data_dir: str | None = field(default=None, metadata={
        "help": "tensorflow-datasets data dir holding the model's dataset; int8 (--quantize) "
                "needs the dataset",
        "none": "the model's own, else the real test images training kept in the model dir "
                "(serving_examples.npz)"})

    @property
    def export_dir(self) -> str:
        return self.output_dir or os.path.join(self.model_dir, "export")

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this export writes, in registry order, fp32 (the reference) first:
        those `precision` names, and int8 when `quantize` (its alias) is set."""
        return precision_registry.resolve(self.precision, also=(Precision.INT8,) if self.quantize else ())


@dataclass(frozen=True)
class PredictConfig:
    model: str = field(metadata={"help": "The .onnx file written by python -m export.to_onnx."})
    images: tuple[str, ...]
    resize: bool = field(default=False, metadata={
        "help": "Resize images of another size to the model's (bilinear); without it a wrong "
                "size is an error."})
    top_k: int = field(default=3, metadata={"help": "How many classes to print per image."})
    session: SessionConfig = dataclasses.field(default_factory=SessionConfig)


def validate_session(c: SessionConfig) -> SessionConfig:
    check(len(c.providers) > 0, "providers must name at least one ONNX Runtime provider")
    c.provider_specs()  # raises on a malformed entry or an unknown option
    check(c.max_batch >= 0, f"max_batch must be >= 0 (0: no TensorRT profile). "
                            f"Received: max_batch={c.max_batch}")
    check(c.graph_optimization in GRAPH_OPTIMIZATIONS,
          f"graph_optimization must be one of {GRAPH_OPTIMIZATIONS}. "
          f"Received: {c.graph_optimization!r}")
    check(c.execution_mode in EXECUTION_MODES,
          f"execution_mode must be one of {EXECUTION_MODES}. Received: {c.execution_mode!r}")
    for name in ("intra_op_threads", "inter_op_threads"):
        check(getattr(c, name) >= 0, f"{name} must be >= 0. Received: {getattr(c, name)}")
    check(0 <= c.log_severity <= 4, f"log_severity must be in [0, 4]. Received: {c.log_severity}")
    return c


def validate_export(c: ExportConfig) -> ExportConfig:
    # tf2onnx 1.17 maps opsets up to 18 (its IR-version table ends there); 13 is the floor of
    # per-channel int8 quantization.
    check(13 <= c.opset <= 18, f"opset must be in [13, 18]. Received: opset={c.opset}")
    check(c.parity_examples >= 1, f"parity_examples must be >= 1. Received: {c.parity_examples}")
    check(0 < c.atol < 1, f"atol must be in (0, 1). Received: atol={c.atol}")
    check(c.calibration_examples >= 1,
          f"calibration_examples must be >= 1. Received: {c.calibration_examples}")
    check(c.quantization_eval_examples >= 1,
          f"quantization_eval_examples must be >= 1. Received: {c.quantization_eval_examples}")
    check(c.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={c.batch_size}")
    wanted = c.precisions  # raises on a name no precision is registered under
    check(not c.fp16_io or Precision.FP16 in wanted,
          f"fp16_io needs precision=fp16. Received: precision={c.precision!r}, fp16_io=True")
    for name in ("fp16_atol", "as_trained_atol"):
        check(0 < getattr(c, name) < 1,
              f"{name} must be in (0, 1). Received: {name}={getattr(c, name)}")
    # --output names the export *directory* (model.onnx, saved_model/, metadata go inside); a
    # path ending in .onnx would silently become a directory of that name.
    out = (c.output_dir or "").rstrip("/")
    check(not out.lower().endswith(".onnx"),
          f"--output is the export directory (model.onnx, saved_model/ and the metadata are "
          f"written inside it), not the ONNX file. Received: output={c.output_dir}; use "
          f"--output={os.path.dirname(out) or '.'}")
    return c


def validate_predict(c: PredictConfig) -> PredictConfig:
    check(bool(c.images), "give at least one image file (PNG or JPEG) after the flags")
    check(c.top_k >= 1, f"top_k must be >= 1. Received: top_k={c.top_k}")
    validate_session(c.session)
    return c
