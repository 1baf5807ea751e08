"""Configs of the export and predict commands: frozen dataclasses built once from flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from nfi_tf.errors import check

# Priority order: the first one that this machine can actually create wins.
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
EXECUTION_MODES = ("sequential", "parallel")


@dataclass(frozen=True)
class SessionConfig:
    """ONNX Runtime session settings; the defaults are the fast ones on CPU, no flags needed."""

    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    graph_optimization: str = "all"  # constant folding and node fusions (conv + activation...)
    # 0: one thread per physical core this process may use (`export.serve.resolve_session`).
    intra_op_threads: int = 0
    inter_op_threads: int = 0  # read in "parallel" execution mode only
    execution_mode: str = "sequential"  # "parallel" only helps graphs with parallel branches
    # Idle worker threads spin briefly before sleeping: the lowest batch-1 latency on dedicated
    # cores (ONNX Runtime's default too); off is kinder to a machine shared with other work.
    allow_spinning: bool = True
    log_severity: int = 3  # 0 verbose .. 4 fatal; 3 hides the per-node placement warnings
    # Single-image requests on CPU run through an IO binding whose output buffers are allocated
    # once (`Predictor._run_bound`): at batch 1 the call is a fraction of a millisecond and
    # ORT's per-call output allocation is a visible part of it. Larger batches never bind.
    io_binding_batch1: bool = True


@dataclass(frozen=True)
class ExportConfig:
    model_dir: str
    output_dir: str | None = None  # None: <model_dir>/export
    opset: int = 17
    quantize: bool = False
    parity_examples: int = 256  # real test images compared across Keras, SavedModel and ORT
    atol: float = 1e-4  # max abs difference allowed on logits and probabilities
    calibration_examples: int = 512  # real training images for int8 calibration
    quantization_eval_examples: int = 1000  # real test images for the fp32 vs int8 comparison
    batch_size: int = 64

    @property
    def export_dir(self) -> str:
        return self.output_dir or os.path.join(self.model_dir, "export")


@dataclass(frozen=True)
class PredictConfig:
    model: str
    images: tuple[str, ...]
    resize: bool = False
    top_k: int = 3
    session: SessionConfig = dataclasses.field(default_factory=SessionConfig)


def validate_session(c: SessionConfig) -> SessionConfig:
    check(len(c.providers) > 0, "providers must name at least one ONNX Runtime provider")
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
