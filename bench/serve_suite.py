"""The serve suite: the serve_model tool (bench/serve_bench.py, in its own process) on a given
model dir, or on an nfi SmallCNN trained here for a few minutes; its report (targets included)
as written.
The bench exports fp32, int8 and fp16 models when the export is incomplete, so one run measures
all three (`precisions` in the report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nfi_tf.vocab import Method

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _serve_model(work_dir: str, tiny: bool, log=print) -> str:
    model_dir = os.path.join(work_dir, "serve_model_tiny" if tiny else "serve_model")
    if os.path.exists(os.path.join(model_dir, "model.keras")):
        log(f"serve: reusing the trained model in {model_dir}")
        return model_dir
    n, k = ("512", "2") if tiny else ("12800", "10")
    log(f"serve: training an nfi SmallCNN on {n} real MNIST images (1 epoch, K={k}) -> {model_dir}")
    subprocess.run([sys.executable, "-m", "nfi_tf.train", f"--model_dir={model_dir}",
                    "--dataset=mnist", f"--method={Method.NFI}", f"--train_examples={n}", "--epochs=1",
                    f"--attack_steps={k}", "--step_size=0.04", "--eval_examples=200",
                    "--eval_attack_steps=2", "--learning_rate=0.05"],
                   cwd=_REPO, check=True, capture_output=True, text=True)
    return model_dir


def run_suite(config, results: dict, log=print) -> dict:
    """The serve suite in `python -m bench` (bench/registry.py)."""
    return run_serve(config.work_dir, config.serve_model_dir, config.tiny, log)


def run_serve(work_dir: str, model_dir: str | None, tiny: bool, log=print) -> dict:
    model_dir = model_dir or _serve_model(work_dir, tiny, log)
    output = os.path.join(work_dir, "serve_bench_tiny.json" if tiny else "serve_bench.json")
    args = [f"--model_dir={model_dir}", f"--output={output}"]
    if tiny:
        args += ["--repeats=10", "--warmup=2", "--throughput_repeats=2", "--throughput_batch=32"]
    args = ["--suite=serve_model", *args]
    log("serve: python -m bench " + " ".join(args))
    proc = subprocess.run([sys.executable, "-m", "bench", *args], cwd=_REPO, capture_output=True,
                          text=True)
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    for line in proc.stdout.splitlines():
        log("  " + line)
    with open(output) as f:
        return json.load(f)
