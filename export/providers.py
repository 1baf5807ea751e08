"""ONNX Runtime execution providers with options: `Name[:key=value[,key=value...]]`.

One provider entry is a string such as `CUDAExecutionProvider:device_id=1` or
`TensorrtExecutionProvider:trt_fp16_enable=1,trt_engine_cache_enable=1`. `parse` turns it into
a `ProviderSpec`; the options of the CUDA, TensorRT and CPU providers are checked against the
tables below (name and value), because ONNX Runtime only checks them once the provider is
actually created: on a machine without a GPU, a misspelt `device_idx=1` would pass silently
and fail later on the GPU server. Other providers' options are passed through unchecked (we
have no table for them and ORT checks them when it creates the provider).

The command line splits `--providers` at commas, so `group_flag_tokens` glues the pieces of one
provider back together: a token `key=value` without a provider name continues the previous one.
"""

from __future__ import annotations

import dataclasses
import re

from nfi_tf.errors import NfiError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
# Providers that run on an accelerator: asking for one and landing on the CPU is the
# "my GPU session silently ran on the CPU" case that `export.serve` warns about.
GPU_PROVIDERS = (TENSORRT, CUDA, "ROCMExecutionProvider", "MIGraphXExecutionProvider",
                 "DmlExecutionProvider", "OpenVINOExecutionProvider")

_BOOL = "bool"  # ORT reads 0/1 (and true/false for some): we accept those and pass 0/1
_INT = "int"
_STR = "str"
_CUDNN_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
_ARENA = ("kNextPowerOfTwo", "kSameAsRequested")

# onnxruntime-gpu 1.31's documented provider options (onnxruntime.ai/docs/execution-providers).
KNOWN_OPTIONS: dict[str, dict[str, object]] = {
    CUDA: {
        "device_id": _INT, "gpu_mem_limit": _INT, "arena_extend_strategy": _ARENA,
        "cudnn_conv_algo_search": _CUDNN_ALGO_SEARCH, "do_copy_in_default_stream": _BOOL,
        "cudnn_conv_use_max_workspace": _BOOL, "cudnn_conv1d_pad_to_nc1d": _BOOL,
        "enable_cuda_graph": _BOOL, "enable_skip_layer_norm_strict_mode": _BOOL,
        "use_tf32": _BOOL, "prefer_nhwc": _BOOL, "use_ep_level_unified_stream": _BOOL,
        "tunable_op_enable": _BOOL, "tunable_op_tuning_enable": _BOOL,
        "tunable_op_max_tuning_duration_ms": _INT,
    },
    TENSORRT: {
        "device_id": _INT, "trt_max_workspace_size": _INT, "trt_max_partition_iterations": _INT,
        "trt_min_subgraph_size": _INT, "trt_fp16_enable": _BOOL, "trt_bf16_enable": _BOOL,
        "trt_int8_enable": _BOOL, "trt_int8_calibration_table_name": _STR,
        "trt_int8_use_native_calibration_table": _BOOL, "trt_dla_enable": _BOOL,
        "trt_dla_core": _INT, "trt_dump_subgraphs": _BOOL, "trt_engine_cache_enable": _BOOL,
        "trt_engine_cache_path": _STR, "trt_engine_cache_prefix": _STR,
        "trt_timing_cache_enable": _BOOL, "trt_timing_cache_path": _STR,
        "trt_force_timing_cache": _BOOL, "trt_detailed_build_log": _BOOL,
        "trt_build_heuristics_enable": _BOOL, "trt_sparsity_enable": _BOOL,
        "trt_builder_optimization_level": _INT, "trt_auxiliary_streams": _INT,
        "trt_tactic_sources": _STR, "trt_extra_plugin_lib_paths": _STR,
        "trt_force_sequential_engine_build": _BOOL, "trt_context_memory_sharing_enable": _BOOL,
        "trt_layer_norm_fp32_fallback": _BOOL, "trt_cuda_graph_enable": _BOOL,
        "trt_engine_decryption_enable": _BOOL, "trt_engine_decryption_lib_path": _STR,
        "trt_profile_min_shapes": _STR, "trt_profile_opt_shapes": _STR,
        "trt_profile_max_shapes": _STR, "trt_dump_ep_context_model": _BOOL,
        "trt_ep_context_file_path": _STR, "trt_ep_context_embed_mode": _INT,
        "trt_engine_hw_compatible": _BOOL, "trt_op_types_to_exclude": _STR,
    },
    CPU: {},  # the CPU provider takes no provider options (threads are session options)
}
PROFILE_OPTIONS = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$")


@dataclasses.dataclass(frozen=True)
class ProviderSpec:
    """A provider name and its options (string values, as ONNX Runtime takes them)."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_gpu(self) -> bool:
        return self.name in GPU_PROVIDERS

    def option_dict(self) -> dict[str, str]:
        return dict(self.options)

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.name}:{opts}" if opts else self.name


def _check_value(provider: str, key: str, value: str, kind: object) -> str:
    if kind == _BOOL:
        low = value.lower()
        if low not in ("0", "1", "true", "false"):
            raise NfiError(f"{provider} option {key} takes 0 or 1. Received: {key}={value}")
        return "1" if low in ("1", "true") else "0"
    if kind == _INT:
        if not re.fullmatch(r"\d+", value):
            raise NfiError(f"{provider} option {key} takes a non-negative integer. "
                           f"Received: {key}={value}")
        return value
    if isinstance(kind, tuple) and value not in kind:
        raise NfiError(f"{provider} option {key} must be one of {', '.join(kind)}. "
                       f"Received: {key}={value}")
    if not value:
        raise NfiError(f"{provider} option {key} needs a value. Received: {key}=")
    return value


def parse(entry: str) -> ProviderSpec:
    """`Name` or `Name:key=value,key=value` -> ProviderSpec, options checked (see the tables)."""
    name, sep, rest = entry.strip().partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise NfiError(f"a provider is an ONNX Runtime provider name, optionally followed by "
                       f":key=value options (e.g. CUDAExecutionProvider:device_id=1). "
                       f"Received: {entry!r}")
    if sep and not rest.strip():
        raise NfiError(f"{name}: no options after ':'. Received: {entry!r}")
    known = KNOWN_OPTIONS.get(name)
    options: dict[str, str] = {}
    for item in (rest.split(",") if rest.strip() else []):
        key, eq, value = item.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise NfiError(f"{name} options are key=value pairs. Received: {item.strip()!r}")
        if key in options:
            raise NfiError(f"{name} option {key} is given twice. Received: {entry!r}")
        if known is not None:
            if key not in known:
                raise NfiError(f"unknown {name} option {key!r}{_hint(key, known)}. "
                               f"Received: {key}={value}")
            value = _check_value(name, key, value, known[key])
        options[key] = value
    return ProviderSpec(name, tuple(options.items()))


def _hint(key: str, known: dict) -> str:
    import difflib

    if not known:
        return " (it takes no options)"
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else " (docs/serving.md lists the known ones)"


def parse_all(entries: tuple[str, ...] | list[str]) -> tuple[ProviderSpec, ...]:
    specs = tuple(parse(e) for e in entries)
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NfiError(f"each provider may be named once. Received: {', '.join(repeated)} "
                       f"more than once")
    return specs


def group_flag_tokens(tokens: list[str]) -> tuple[str, ...]:
    """`--providers` split at commas -> one entry per provider: a `key=value` token (no
    `Name:` before its `=`) belongs to the provider before it."""
    entries: list[str] = []
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        colon, eq = token.find(":"), token.find("=")
        continues = eq >= 0 and (colon < 0 or eq < colon)
        if continues:
            if not entries:
                raise NfiError(f"--providers must start with a provider name. Received: "
                               f"{','.join(tokens)!r}")
            sep = "," if ":" in entries[-1] else ":"
            entries[-1] = f"{entries[-1]}{sep}{token}"
        else:
            entries.append(token)
    return tuple(entries)


def tensorrt_profiles(input_name: str, image_shape: tuple[int, ...], max_batch: int,
                      opt_batch: int | None = None) -> dict[str, str]:
    """TensorRT optimization-profile options for a dynamic batch of 1..max_batch images.

    Without a profile TensorRT builds an engine for the first batch size it sees and rebuilds
    (seconds to minutes) whenever a larger one arrives; one profile covering 1..max_batch builds
    once. The engine is tuned for `opt_batch` (default: max_batch, the throughput case)."""
    if max_batch < 1:
        raise NfiError(f"max_batch must be >= 1 for TensorRT profiles. Received: {max_batch}")
    opt = max_batch if opt_batch is None else opt_batch
    dims = "x".join(str(int(d)) for d in image_shape)
    shape = lambda b: f"{input_name}:{b}x{dims}"
    return {"trt_profile_min_shapes": shape(1), "trt_profile_opt_shapes": shape(opt),
            "trt_profile_max_shapes": shape(max_batch)}
