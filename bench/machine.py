"""What the benchmarks ran on: CPU model, vector extensions, library versions."""

from __future__ import annotations

import os
import platform

# CPU flags (Linux /proc/cpuinfo names) that decide whether a reduced precision has native
# arithmetic here: without them bfloat16 and int8 run through conversions to fp32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


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


def machine() -> dict:
    import numpy as np

    info = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}
    flags = cpu_flags()
    if flags:
        info["vector_extensions"] = sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    info["precision_support"] = precision_support(flags)
    for module in ("tensorflow", "keras", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info
