"""The benchmark suite: `python -m bench --suite=NAME[,NAME...]|all [--tiny] [--out=...]`.

Suites (comma-separated lists work too, e.g. `--suite=peak,train`):
  peak         this machine's fp32 peak, a large numpy matmul (bench/peak.py)
  train        the compiled TRADES and nfi steps, batch 128, SmallCNN/MNIST and WRN-16-1/CIFAR-10
               on real batches: ms/step, images/s, peak RSS, GFLOP/s against the peak; the naive
               eager baseline; the performance levers (XLA, threads, input feed, bfloat16)
               (bench/train_suite.py)
  scaling      ms/step vs batch 32..512 and PGD steps 1..40, peak RSS vs batch, PNG plot
  serve        ONNX Runtime vs TF SavedModel serving, default Predictor and the settings tried,
               fp32, fp16 and int8 (bench/serve_bench.py) on a SmallCNN trained here for a few minutes
               (or the model dir given by --serve_model_dir)
  flops        the analytic FLOP count against TensorFlow's own, and oneDNN's convolution
               algorithms (bench/flops_suite.py)
  bf16         mixed_bfloat16 vs fp32 interleaved: training step and serving (bench/bf16.py)
  paper_scale  WRN-34-10 peak RSS vs batch (largest batch in 24 GiB) and the paper's CIFAR-10
               recipe's time here and on named GPUs (bench/paper_scale.py)
Prints the tables (bench/tables.py) and writes one JSON file (bench/suites.py). Every timed
configuration runs in a fresh process (its own peak RSS); `--tiny` shrinks everything (small
batches and models, 1-2 PGD steps, one timed step, in this process where peak RSS is not the
point) so CI can check that the suites run and their JSON is complete.
"""

from __future__ import annotations

from absl import app, flags


def main(argv: list[str]) -> None:
    from bench.suites import run_suites
    from flags.bench import bench_config_from_flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run_suites(bench_config_from_flags(flags.FLAGS), log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    from flags import bench as bench_flags
    from nfi_tf.commands import entry as cli

    bench_flags.define_flags()
    cli.run_command("bench", main)
