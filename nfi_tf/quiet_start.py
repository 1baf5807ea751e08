"""TensorFlow's start-up chatter on a machine without a GPU, kept out of the user's terminal.

Importing TensorFlow on a CPU-only machine prints, from C++ and before any logging setting
applies, lines that read like errors to a newcomer ("Could not find cuda drivers", "failed call
to cuInit: ... (303)", "All log messages before absl::InitializeLog()", the CPU-feature notice).
`quiet_import()` imports TensorFlow and lets it enumerate its devices with the process's stderr
(file descriptor 2) pointed at a temporary file, then writes back every line that is not one of
those known notices. They are dropped only where no NVIDIA driver exists (no /proc/driver/nvidia,
no /dev/nvidia0): on a GPU machine everything TensorFlow said is shown, so a real GPU problem
still shows. `NFI_TF_STARTUP_LOGS=1` shows everything everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# TensorFlow's notices on a machine with no GPU (C++ logging, before absl is initialised).
CPU_ONLY_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|Could not find cuda drivers|failed call to cuInit"
    r"|cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the appropriate"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    # oneDNN's "custom operations are on" (TF_ENABLE_ONEDNN_OPTS=1, or by default on CPUs with
    # AVX512-VNNI/BF16/AMX): a notice that mentions "errors" and reads like one.
    r"|oneDNN custom operations are on")


def has_nvidia_driver() -> bool:
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidia0")


def keep(line: str, gpu_machine: bool) -> bool:
    """Whether a start-up stderr line is shown."""
    return gpu_machine or not CPU_ONLY_NOISE.search(line)


@contextlib.contextmanager
def _stderr_to_file():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield tmp
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_import() -> None:
    """Import TensorFlow (and list its devices) without the CPU-only start-up notices."""
    if "tensorflow" in sys.modules or os.environ.get("NFI_TF_STARTUP_LOGS") == "1":
        return
    gpu_machine = has_nvidia_driver()
    try:
        with _stderr_to_file() as tmp:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA's probe happens here, not at import
            tmp.flush()
            tmp.seek(0)
            said = tmp.read().decode(errors="replace")
    except OSError:  # no usable file descriptor 2 (an embedded interpreter): import as is
        import tensorflow  # noqa: F401

        return
    shown = [ln for ln in said.splitlines() if ln.strip() and keep(ln, gpu_machine)]
    if shown:
        print("\n".join(shown), file=sys.stderr, flush=True)
