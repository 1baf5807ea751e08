"""Logs a person can read: plain progress lines off a terminal, no CUDA notices on a CPU-only
machine (and all of TensorFlow's start-up output on a GPU machine)."""

import io
import os
import subprocess
import sys

from helpers import REPO

from nfi_tf import progress, quiet_start


def test_line_progress_prints_plain_throttled_lines():
    out = io.StringIO()
    bar = progress.LineProgress(10, "evaluate", "attack", every=3600, stream=out)
    for _ in range(9):
        bar.add(1)
    assert out.getvalue() == ""  # throttled: nothing before the end within the interval
    bar.add(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate: 10/10 attack (100%), ")
    assert "\r" not in out.getvalue() and "\b" not in out.getvalue()
    every = io.StringIO()
    eager = progress.LineProgress(4, "epoch 1", "step", every=0.0, stream=every)
    for i in range(4):
        eager.update(i + 1, values=[("loss", 1.0)])
    assert [ln.split(",")[0] for ln in every.getvalue().splitlines()] == [
        "epoch 1: 1/4 step (25%)", "epoch 1: 2/4 step (50%)", "epoch 1: 3/4 step (75%)",
        "epoch 1: 4/4 step (100%)"]


def test_cpu_only_notices_are_dropped_only_without_a_gpu_driver():
    noise = ["W0000 ... All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not "
             "be used.",
             "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: (303)",
             "I0000 00:00:1 port.cc:153] oneDNN custom operations are on. You may see slightly different "
             "numerical results due to floating-point round-off errors"]
    real = "E0000 00:00:1 some_kernel.cc:9] Out of memory while allocating 12 GiB"
    assert not any(quiet_start.keep(line, gpu_machine=False) for line in noise)
    assert quiet_start.keep(real, gpu_machine=False)
    assert all(quiet_start.keep(line, gpu_machine=True) for line in noise + [real])


def test_a_command_in_a_log_file_has_no_start_up_notices_or_carriage_returns(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nfi_tf.evaluate", "--model_dir=/nonexistent"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    if not quiet_start.has_nvidia_driver():
        assert out.stderr.strip().splitlines() == [
            "nfi_tf.evaluate: error: model dir /nonexistent does not exist"]
    shown = subprocess.run([sys.executable, "-c", "import nfi_tf"], cwd=REPO, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "NFI_TF_STARTUP_LOGS": "1"})
    if not quiet_start.has_nvidia_driver():  # asked for: TensorFlow's own lines are all there
        assert "cuda" in shown.stderr.lower()
