"""Serve an exported model with ONNX Runtime: provider fallback, validated requests.

`Predictor` opens one session with the first execution provider (in priority order) this
machine can actually create, checks every request against the model's own metadata (shape,
dtype, finite values in [0, 1]; uint8 images are scaled by 1/255) and returns labelled
predictions.

Session defaults are the fast CPU settings, no flags needed: one intra-op thread per physical
core (see `physical_cores`), all graph optimizations (ORT_ENABLE_ALL), sequential execution,
spinning workers, and single-image requests through an IO binding with preallocated outputs.

Providers may carry options (`export.providers`); the session reports which providers it really
runs on, and a GPU provider asked for that could not be created is a one-line warning (logged
on `export.serve`), not a silent run on the CPU. On a GPU provider requests go through a
device IO binding (input copied once, outputs allocated on the device).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import threading
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort

from export import providers as providers_lib
from export.config import DEFAULT_PROVIDERS, SessionConfig, validate_session
from export.metadata import ServingMetadata
from nfi_tf import outputs as output_names
from nfi_tf.errors import NfiError

CPU = providers_lib.CPU
# Providers whose outputs ORT can keep in CUDA device memory for an IO binding.
_CUDA_DEVICE_PROVIDERS = (providers_lib.TENSORRT, providers_lib.CUDA)
_INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
log = logging.getLogger(__name__)
_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_EXECUTION = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
              "parallel": ort.ExecutionMode.ORT_PARALLEL}
_ORT_DEFAULT_LOG_SEVERITY = 2  # onnxruntime's own default for its process-wide logger


class RequestError(NfiError, ValueError):
    """A request the model cannot serve; the message names the received value."""


def physical_cores() -> int:
    """Physical cores this process may run on: psutil's count (os.cpu_count() when psutil cannot
    tell), capped by the CPU affinity mask (taskset, cpusets)."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:
        n = None
    n = n or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        n = min(n, len(os.sched_getaffinity(0)))
    return max(1, n)


def resolve_session(cfg: SessionConfig) -> SessionConfig:
    """`cfg` with intra_op_threads=0 replaced by the physical core count.

    Physical, not logical: two threads on one core share its vector units, and compute-bound
    kernels (the convolutions' GEMMs) gain little from the second while paying its
    synchronization; ONNX Runtime's own default counts physical cores for the same reason. Our
    count rather than its 0, because with 0 it also sets each thread's core affinity, which
    fights `taskset` and other tenants of a shared machine.
    """
    if cfg.intra_op_threads:
        return cfg
    return dataclasses.replace(cfg, intra_op_threads=physical_cores())


def session_options(cfg: SessionConfig) -> ort.SessionOptions:
    cfg = resolve_session(cfg)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _OPTIMIZATION[cfg.graph_optimization]
    opts.execution_mode = _EXECUTION[cfg.execution_mode]
    opts.intra_op_num_threads = cfg.intra_op_threads
    opts.inter_op_num_threads = cfg.inter_op_threads
    opts.log_severity_level = cfg.log_severity
    opts.add_session_config_entry("session.intra_op.allow_spinning",
                                  "1" if cfg.allow_spinning else "0")
    return opts


@contextlib.contextmanager
def _quiet_provider_probe() -> Iterator[None]:
    """ONNX Runtime reports an unusable GPU provider by printing to stdout (TensorRT) and by
    logging errors process-wide (CUDA), then falls back anyway; we report the outcome in one
    line instead. The process-wide severity has no getter, so it returns to ORT's default."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)


def _model_input(model: str | bytes) -> tuple[str, tuple[int, ...]]:
    """The graph input's name and its per-image dims (read without the weights)."""
    import onnx

    proto = (onnx.load(model, load_external_data=False) if isinstance(model, str)
             else onnx.load_model_from_string(model))
    inp = proto.graph.input[0]
    return inp.name, tuple(d.dim_value for d in inp.type.tensor_type.shape.dim[1:])


def provider_options(spec: providers_lib.ProviderSpec, cfg: SessionConfig,
                     model: str | bytes) -> dict[str, str]:
    """`spec`'s options, plus TensorRT batch profiles from `cfg.max_batch` unless given."""
    options = spec.option_dict()
    if (spec.name == providers_lib.TENSORRT and cfg.max_batch
            and not any(k in options for k in providers_lib.PROFILE_OPTIONS)):
        name, dims = _model_input(model)
        options.update(providers_lib.tensorrt_profiles(name, dims, cfg.max_batch))
    return options


def open_session(model: str | bytes, cfg: SessionConfig) -> tuple[ort.InferenceSession, list[str]]:
    """A session on the first provider of `cfg.providers` that works here (CPU last resort),
    and notes on the requested providers it could not use."""
    available = ort.get_available_providers()
    specs = cfg.provider_specs()
    chain = [s for s in specs if s.name in available]
    notes = [f"{s.name} is not in this onnxruntime build" for s in specs if s.name not in available]
    if CPU not in [s.name for s in chain]:
        chain.append(providers_lib.ProviderSpec(CPU))
    names = [s.name for s in chain]
    options = [provider_options(s, cfg, model) for s in chain]
    opts = session_options(cfg)
    try:
        with _quiet_provider_probe():
            session = ort.InferenceSession(model, sess_options=opts, providers=names,
                                           provider_options=options)
    except Exception as first:  # ORT raises its own pybind types; any failure -> try CPU alone
        if names == [CPU]:
            raise _open_error(model, first) from first
        try:
            session = ort.InferenceSession(model, sess_options=opts, providers=[CPU])
        except Exception as e:
            raise _open_error(model, e) from e
        gpus = ", ".join(p for p in names if p != CPU)
        notes.append(f"{gpus} failed ({_first_line(first)}); using CPU only")
        return session, notes
    unusable = [p for p in names if p not in session.get_providers()]
    if unusable:
        # ORT's own explanation (printed, or logged process-wide) is a multi-line dump.
        notes.append(f"{', '.join(unusable)} unavailable here (no usable GPU, or missing "
                     f"CUDA/cuDNN/TensorRT libraries)")
    return session, notes


def gpu_fallback(cfg: SessionConfig, running: list[str], available: list[str]) -> list[str]:
    """The GPU providers asked for when the session ended up on the CPU anyway.

    Counted when named explicitly, or (in the default chain) when this onnxruntime build has
    them, i.e. onnxruntime-gpu is installed and the GPU or its libraries are not usable: the
    "my GPU session silently ran on the CPU" case. The default chain on a CPU-only build is not
    a fallback, it is the CPU asked for."""
    if running and running[0] != CPU:
        return []
    explicit = tuple(cfg.providers) != DEFAULT_PROVIDERS
    return [s.name for s in cfg.provider_specs()
            if s.is_gpu and (explicit or s.name in available)]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _open_error(model: str | bytes, e: Exception) -> NfiError:
    where = model if isinstance(model, str) else "the in-memory model"
    return NfiError(f"ONNX Runtime cannot open {where}: {_first_line(e)}")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Per-image class, route and probabilities of the routed output."""

    classes: np.ndarray  # (N,) int64
    routes: np.ndarray  # (N,) int32: 0 benign, 1 adversarial, 2 trade-off
    probabilities: np.ndarray  # (N, C)
    logits: np.ndarray  # (N, C) routed logits
    metadata: ServingMetadata

    def class_name(self, i: int) -> str:
        return self.metadata.class_name(int(self.classes[i]))

    def route_name(self, i: int) -> str:
        r = int(self.routes[i])
        names = self.metadata.route_names
        return names[r] if 0 <= r < len(names) else str(r)

    def top(self, i: int, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities[i], kind="stable")[:k]
        return [(self.metadata.class_name(int(c)), float(self.probabilities[i, c])) for c in order]


class Predictor:
    """An ONNX Runtime session on an exported model, with request validation.

    Args:
        model_path: the `.onnx` file written by `python -m export.to_onnx`.
        session: providers (priority order), graph optimization and thread settings.
    """

    # IO binding for single images only: on CPU, session.run already reads a C-contiguous float32
    # input in place, so what binding saves is ORT allocating (and Python wrapping) the outputs on
    # every call: noticeable next to a ~0.2 ms batch-1 call, nothing next to a batch of 256. The
    # binding and its output buffers are made once per thread and output set (a binding is not
    # thread-safe); the input is rebound per call (cheap: it wraps the array, no copy).
    def __init__(self, model_path: str, session: SessionConfig | None = None):
        cfg = resolve_session(validate_session(session or SessionConfig()))
        self.session_config = cfg  # as used: intra_op_threads resolved
        if not os.path.isfile(model_path):
            raise NfiError(f"no ONNX model at {model_path}: export one with "
                           f"python -m export.to_onnx --model_dir=...")
        self.model_path = model_path
        self.session, self.provider_notes = open_session(model_path, cfg)
        self.fallen_back = gpu_fallback(cfg, self.providers, ort.get_available_providers())
        if self.fallen_back:
            log.warning("%s asked for %s but runs on %s (%s); pass --providers=%s to ask for the "
                        "CPU", os.path.basename(model_path), ", ".join(self.fallen_back), CPU,
                        "; ".join(self.provider_notes) or "no reason given", CPU)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type not in _INPUT_DTYPES:
            raise NfiError(f"{model_path} must take one float32 (or float16) image tensor. "
                           f"Received inputs: {[(i.name, i.type, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        # float16 only for a model exported with --fp16_io; requests are validated as float32.
        self.input_dtype = _INPUT_DTYPES[inputs[0].type]
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._bindings = threading.local()
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.metadata = ServingMetadata.parse(props, list(inputs[0].shape))
        except (ValueError, KeyError) as e:
            raise NfiError(f"{model_path}: unusable model metadata ({e})") from e

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, best first."""
        return self.session.get_providers()

    @property
    def provider(self) -> str:
        return self.providers[0]

    @property
    def device(self) -> tuple[str, int]:
        """Where a device IO binding puts tensors: ("cuda", device_id) on CUDA/TensorRT."""
        if self.provider in _CUDA_DEVICE_PROVIDERS:
            spec = next((s for s in self.session_config.provider_specs()
                         if s.name == self.provider), providers_lib.ProviderSpec(self.provider))
            return "cuda", int(spec.option_dict().get("device_id", 0))
        return "cpu", 0

    def describe(self) -> str:
        notes = "; ".join(self.provider_notes)
        return f"{os.path.basename(self.model_path)} on {self.provider}" + (
            f" ({notes})" if notes else "")

    def validate(self, images) -> np.ndarray:
        """The request as a float32 NHWC batch in [0, 1], or a RequestError saying why not."""
        h, w, c = self.metadata.image_shape
        if not isinstance(images, np.ndarray):
            try:
                images = np.asarray(images)
            except (ValueError, TypeError) as e:
                raise RequestError(f"images must be an array. Received: {type(images).__name__}"
                                   ) from e
        shape = tuple(images.shape)
        if images.ndim != 4:
            hint = " (one image? add a batch axis: images[None])" if images.ndim == 3 else ""
            raise RequestError(f"images must be a rank-4 NHWC batch (N, {h}, {w}, {c}). "
                               f"Received: rank {images.ndim}, shape {shape}{hint}")
        if shape[0] == 0:
            raise RequestError(f"the batch is empty. Received: shape {shape}")
        if shape[1:3] != (h, w):
            raise RequestError(f"images must be {h}x{w} (height x width). Received: shape {shape}")
        if shape[3] != c:
            kind = "grayscale" if c == 1 else "RGB" if c == 3 else f"{c}-channel"
            raise RequestError(f"the model takes {kind} images with {c} channel(s). "
                               f"Received: {shape[3]} channels, shape {shape}")
        if images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(255)
        if images.dtype.kind != "f":
            raise RequestError(f"images must be uint8 (0-255) or float (0-1). "
                               f"Received: dtype {images.dtype}")
        finite = np.isfinite(images)
        if not finite.all():
            n_nan = int(np.isnan(images).sum())
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise RequestError(f"images must be finite. Received: {n_nan} NaN and "
                               f"{int((~finite).sum()) - n_nan} Inf values (first at {first})")
        lo, hi = self.metadata.input_range
        vmin, vmax = float(images.min()), float(images.max())
        if vmin < lo or vmax > hi:
            hint = " (0-255 pixels? divide by 255 or send uint8)" if 1 < vmax <= 255 else ""
            raise RequestError(f"float images must be in [{lo:g}, {hi:g}]. "
                               f"Received: values in [{vmin:.4g}, {vmax:.4g}]{hint}")
        return np.ascontiguousarray(images, dtype=np.float32)

    @property
    def binds_single_images(self) -> bool:
        return self.session_config.io_binding_batch1 and self.provider == CPU

    @property
    def binds_device_memory(self) -> bool:
        return self.session_config.device_io_binding and self.device[0] != "cpu"

    def run(self, images, outputs: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """All (or the named) raw outputs for a validated batch."""
        names = tuple(outputs or self.output_names)
        x = self._as_input(self.validate(images))
        if self.binds_device_memory:
            binding = self._run_bound_on_device(x, names)
            return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))
        if x.shape[0] == 1 and self.binds_single_images:
            return self._run_bound(x, names)
        values = self.session.run(list(names), {self.input_name: x})
        return dict(zip(names, values, strict=True))

    def run_on_device(self, images, outputs: tuple[str, ...] | None = None
                      ) -> dict[str, ort.OrtValue]:
        """The outputs as OrtValues left where the session computed them (GPU memory on
        CUDA/TensorRT), for a pipeline whose next stage reads them there; `.numpy()` copies one
        to the host. The input is copied to the device once."""
        names = tuple(outputs or self.output_names)
        binding = self._run_bound_on_device(self._as_input(self.validate(images)), names)
        return dict(zip(names, binding.get_outputs(), strict=True))

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        return x if self.input_dtype == np.float32 else x.astype(self.input_dtype)

    def _run_bound_on_device(self, x: np.ndarray, names: tuple[str, ...]) -> ort.IOBinding:
        # A fresh binding per call: output shapes follow the batch, ORT allocates them on the
        # device, and nothing is shared between threads. bind_cpu_input copies the host array to
        # the session's device once (no copy at all on the CPU).
        device, device_id = self.device
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, x)
        for name in names:
            binding.bind_output(name, device, device_id)
        self.session.run_with_iobinding(binding)
        return binding

    def _run_bound(self, x: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """One image through this thread's IO binding for `names`; the first call of a thread
        and output set runs session.run to learn the output shapes and dtypes."""
        cache = self._bindings.__dict__
        if names not in cache:
            first = self.session.run(list(names), {self.input_name: x})
            binding = self.session.io_binding()
            buffers = [np.empty_like(v) for v in first]
            # ortvalue_from_numpy on CPU wraps the buffer (no copy): ORT writes the results in it.
            values = [ort.OrtValue.ortvalue_from_numpy(b) for b in buffers]
            for name, value in zip(names, values, strict=True):
                binding.bind_ortvalue_output(name, value)
            cache[names] = (binding, buffers, values)
            return dict(zip(names, first, strict=True))
        binding, buffers, _ = cache[names]
        binding.bind_cpu_input(self.input_name, x)
        self.session.run_with_iobinding(binding)
        # Copies: the buffers are overwritten by this thread's next single-image call.
        return {name: b.copy() for name, b in zip(names, buffers, strict=True)}

    def predict(self, images) -> Prediction:
        routed, route, probabilities = output_names.ROUTED, output_names.ROUTE, output_names.PROBABILITIES
        out = self.run(images, (routed, route, probabilities))
        return Prediction(classes=np.argmax(out[routed], axis=-1), routes=out[route],
                          probabilities=out[probabilities], logits=out[routed],
                          metadata=self.metadata)
