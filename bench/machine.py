"""What the benchmarks ran on: CPU model, vector extensions, library versions."""

from __future__ import annotations

import os
import platform

# CPU flags (Linux /proc/cpuinfo names) that decide whether a reduced precision has native
# arithmetic here: without them bfloat16 and int8 run through conversions to fp32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# TensorFlow's x86 Linux builds turn their oneDNN ops (convolutions, fused matmuls...) on by
# default only on CPUs with one of these; elsewhere (an AVX2-only AMD, say) its own Eigen
# kernels run, which compute different last bits. TF_ENABLE_ONEDNN_OPTS overrides the choice.
ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not available)."""
    return set((_cpuinfo_field("flags") or "").split())


def precision_support(flags: set[str] | None = None) -> dict[str, list[str]]:
    """The native bf16 and int8 dot-product extensions this CPU has (empty lists: none)."""
    flags = cpu_flags() if flags is None else flags
    return {"bf16": [f for f in BF16_FLAGS if f in flags],
            "int8_dot": [f for f in INT8_DOT_FLAGS if f in flags]}


def onednn_ops_expected(env=None, flags: set[str] | None = None) -> tuple[bool, str]:
    """Whether TensorFlow should run its oneDNN ops here, and why (the setting or the CPU)."""
    env = os.environ if env is None else env
    setting = env.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is not None:
        return setting.strip().lower() in ("1", "true"), f"TF_ENABLE_ONEDNN_OPTS={setting}"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in ONEDNN_DEFAULT_FLAGS if f in flags]
    if found:
        return True, f"TensorFlow's default on a CPU with {', '.join(found)}"
    return False, "TensorFlow's default on a CPU without AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX"


def machine() -> dict:
    import numpy as np

    info = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}
    flags = cpu_flags()
    if flags:
        info["vector_extensions"] = sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    info["precision_support"] = precision_support(flags)
    info["onednn_ops"], info["onednn_ops_reason"] = onednn_ops_expected(flags=flags)
    for module in ("tensorflow", "keras", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info
