"""Which convolution kernels TensorFlow runs on the CPU: nfi-tf asks for oneDNN's on x86-64 Linux.

TensorFlow's x86 Linux build runs its oneDNN ops (convolutions, fused matmuls) by default only on
CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX; elsewhere (e.g. an AVX2-only AMD EPYC) it
runs its own Eigen convolutions. Measured on such an AVX2 CPU (2 cores, SmallCNN on MNIST,
BENCHMARKS.md "CPU kernels"): a forward + backward to the input ran at 82 GFLOP/s with Eigen and
116 GFLOP/s with oneDNN (x1.4), and a training epoch took 32 s against 23.5 s (x1.36). So
nfi-tf sets TF_ENABLE_ONEDNN_OPTS=1 when it is imported before TensorFlow, on x86-64 Linux,
unless the variable is already set: `TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen's kernels.

TensorFlow reads the variable once, when it is imported: set after that, it changes nothing
(the package then leaves it alone). The two kernel sets compute different last bits, so a run
is reproducible on one machine and setting, not bit for bit across them (docs/conventions.md).
"""

from __future__ import annotations

import os
import platform
import sys

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
_X86_64 = ("x86_64", "amd64")
set_by_package = False  # True once prefer_onednn() wrote the variable into os.environ


def user_environment() -> dict:
    """os.environ as the user set it (without the variable this module wrote), for a child
    process that should make its own choice (e.g. a benchmark of another version's code)."""
    env = dict(os.environ)
    if set_by_package:
        env.pop(VARIABLE, None)
    return env


def prefer_onednn(environ=None, system: str | None = None, machine: str | None = None,
                  tensorflow_loaded: bool | None = None) -> str | None:
    """Set TF_ENABLE_ONEDNN_OPTS=1 where it helps and is still in time; returns what was set
    (None when the user's setting, the platform or an already imported TensorFlow decides)."""
    environ = os.environ if environ is None else environ
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    loaded = "tensorflow" in sys.modules if tensorflow_loaded is None else tensorflow_loaded
    if VARIABLE in environ or loaded or system != "Linux" or machine.lower() not in _X86_64:
        return None
    environ[VARIABLE] = "1"
    if environ is os.environ:
        global set_by_package
        set_by_package = True
    return "1"
