"""Multi-worker scaling on this machine: training steps/s with 1 worker vs N workers.

    python -m bench --suite=multi_worker [--workers=1,2] [--batch=128] [--attack_steps=10]
        [--warmup=3] [--steps=20] [--intra_op_threads=0] [--out=FILE.json]
    (also python -m bench.multi_worker ...; flags: bench.config.MultiWorkerConfig)

1 worker is one process on the default strategy (what `python -m nfi_tf.train` runs without
--strategy); N > 1 workers are N processes joined by MultiWorkerMirroredStrategy through
TF_CONFIG on 127.0.0.1, splitting the same global batch (`--batch`) between them. Each worker
builds the step as `nfi_tf.training` does (SmallCNN, TRADES, real MNIST batches from
`data.TrainStream`, distributed with `distribute.distribute_dataset`) and times `--steps` steps
after `--warmup`, each synchronized on its loss (the chief's figures are reported: every step is
a collective, so all workers advance together).

On one machine the workers share its cores: N workers gain only where one process leaves cores
idle (small per-step work, the serial parts of the step) and pay the all-reduce over loopback,
which costs less than a real network would. The load average is recorded: on shared cores,
compare figures within one run only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from nfi_tf.vocab import Method

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESULT = "RESULT "


def _worker(spec: dict) -> dict:
    """One worker's timed steps; runs in its own process (TF_CONFIG set when spec["workers"] > 1)."""
    import tensorflow as tf

    from nfi_tf.distribute import build_strategy

    if spec["intra_op_threads"]:  # configuration only: it must precede TensorFlow's start-up
        tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op_threads"])
    # Then, before any TensorFlow op: MultiWorkerMirroredStrategy configures the collectives.
    strategy = build_strategy("multi_worker" if spec["workers"] > 1 else "default")
    from nfi_tf import data
    from nfi_tf.config import make_config
    from nfi_tf.distribute import distribute_dataset
    from nfi_tf.models import build_classifier
    from nfi_tf.training import AdversarialTrainer, configure_runtime, make_optimizer, step_function

    total = spec["warmup"] + spec["steps"]
    config = make_config("mnist", {
        "data": {"train_examples": spec["batch"] * total},
        "model": {"method": Method.TRADES, "backbone": "small_cnn", "dropout": 0.0},
        "attack": {"num_steps": spec["attack_steps"]},
        "train": {"batch_size": spec["batch"], "lr_decay_epochs": ()},
    })
    configure_runtime(config)
    info = data.load_info(config.data, download=False)
    stream = data.TrainStream(config.data, config.train.batch_size, config.train.seed,
                              download=False)
    with strategy.scope():
        classifier = build_classifier(config.model, info.image_shape, info.num_classes)
        trainer = AdversarialTrainer(classifier, config)
        optimizer = make_optimizer(config, stream.steps_per_epoch)
        trainer.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(classifier.trainable_variables)
    step = step_function(trainer, strategy, jit_compile=False)
    ds = stream.epoch(0)
    if strategy.num_replicas_in_sync > 1:
        ds = distribute_dataset(strategy, ds)
    times, cpu = [], []
    for batch in ds:
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = float(step(batch)["loss"])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if not loss == loss:
            raise RuntimeError(f"loss is NaN at benchmark step {len(times)}")
    timed = times[spec["warmup"]:]
    seconds = statistics.median(timed)
    return {"workers": spec["workers"], "replicas": strategy.num_replicas_in_sync,
            "steps_timed": len(timed), "first_step_s": times[0],
            "ms_per_step_median": 1e3 * seconds, "ms_per_step_all": [1e3 * t for t in times],
            "cpu_ms_per_step_median": 1e3 * statistics.median(cpu[spec["warmup"]:]),
            "steps_per_s": 1 / seconds, "images_per_s": spec["batch"] / seconds,
            "load_average": os.getloadavg()}




def run_workers(spec: dict, timeout: float) -> dict:
    """`spec["workers"]` worker processes on loopback; the chief's result, or {"error": ...}.
    Every process is killed on failure or timeout (a worker whose peer died waits forever)."""
    n = spec["workers"]
    addresses = [f"127.0.0.1:{p}" for p in _ports(n)] if n > 1 else []
    procs = []
    with tempfile.TemporaryDirectory(prefix="nfi_tf_bench_mw_") as logs:
        try:
            for i in range(n):
                env = dict(os.environ)
                env.pop("TF_CONFIG", None)
                if n > 1:
                    env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                                   "task": {"type": "worker", "index": i}})
                with open(os.path.join(logs, f"{i}.log"), "w") as out:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "bench", "--suite=multi_worker",
                         f"--worker_spec={json.dumps(spec)}"], cwd=_REPO, env=env, stdout=out,
                        stderr=subprocess.STDOUT))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                codes = [p.poll() for p in procs]
                if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                    break
                time.sleep(0.2)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        with open(os.path.join(logs, "0.log")) as f:
            chief = f.read()
        codes = [p.returncode for p in procs]
    for line in chief.splitlines():
        if line.startswith(_RESULT) and all(c == 0 for c in codes):
            return {"spec": spec, **json.loads(line[len(_RESULT):])}
    tail = "\n".join(chief.strip().splitlines()[-5:])
    return {"spec": spec, "error": f"exit codes {codes} (timeout {timeout:.0f} s): {tail}"}


def run_scaling(workers: list[int], batch: int, attack_steps: int, warmup: int, steps: int,
                intra_op_threads: int = 0, timeout: float = 900, log=print) -> dict:
    results = []
    for n in workers:
        spec = {"workers": n, "batch": batch, "attack_steps": attack_steps, "warmup": warmup,
                "steps": steps, "intra_op_threads": intra_op_threads}
        r = run_workers(spec, timeout)
        results.append(r)
        if "error" in r:
            log(f"  {n} worker(s): ERROR {r['error']}")
        else:
            log(f"  {n} worker(s), {r['replicas']} replica(s): {r['ms_per_step_median']:.0f} "
                f"ms/step, {r['steps_per_s']:.2f} steps/s, {r['images_per_s']:.0f} img/s")
    base = next((r for r in results if r.get("workers") == 1 and "error" not in r), None)
    if base:
        for r in results:
            if "error" not in r:
                r["speedup_vs_1_worker"] = r["steps_per_s"] / base["steps_per_s"]
    return {"results": results, "cpu_count": os.cpu_count(), "transport": "gRPC on 127.0.0.1",
            "note": "global batch split across workers; workers share this machine's cores"}


def _ports(n: int) -> list[int]:
    from nfi_tf.distribute import free_loopback_ports  # loads TensorFlow: only when launching

    return free_loopback_ports(n)


def run_suite(config, log=print) -> dict | None:
    """--suite=multi_worker: a MultiWorkerConfig's worker counts measured (or, with
    `worker_spec`, this process is one worker of a measurement: its RESULT line)."""
    if config.worker_spec:
        print(_RESULT + json.dumps(_worker(json.loads(config.worker_spec))), flush=True)
        return None
    load_before = os.getloadavg()
    report = run_scaling(list(config.workers), config.batch, config.attack_steps, config.warmup,
                         config.steps, config.intra_op_threads, log=log)
    report["load_average_before"] = load_before
    if config.out:
        from nfi_tf import io_utils

        io_utils.atomic_write_json(config.out, report)
        log(f"written to {config.out}")
    if any("error" in r for r in report["results"]):
        sys.exit(1)
    return report


if __name__ == "__main__":
    from bench.cli import alias

    alias("multi_worker")
