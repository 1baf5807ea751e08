"""tf.distribute strategies by name: the engine that scales training out.

- default:      one device (whatever TensorFlow picks: the GPU if there is one, else the CPU).
- mirrored:     MirroredStrategy, synchronous data parallelism over the GPUs of one machine
                (or, with no GPU, over the logical CPU devices configured before startup).
- multi_worker: MultiWorkerMirroredStrategy over machines described by the TF_CONFIG variable
                (create it first: it configures collectives, which fails once TF has run an op).
- tpu:          TPUStrategy on the TPU named by TPU_NAME (or the local one).
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.errors import NfiError


def build_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:  # "Collective ops must be configured at program startup"
            raise NfiError(f"--strategy=multi_worker must be set up before TensorFlow runs any "
                           f"op ({e}): start it in a fresh process. Received: strategy={name}") from e
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise NfiError(f"--strategy=tpu but no TPU was found ({e}); use --strategy=default") from e
        return tf.distribute.TPUStrategy(resolver)
    raise NfiError(f"unknown strategy {name!r}: use default, mirrored, multi_worker or tpu")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the shared model dir: always, except on the non-chief workers
    of MultiWorkerMirroredStrategy (worker 0 is the chief when TF_CONFIG names no chief)."""
    return bool(strategy.extended.should_checkpoint)


def distribute_dataset(strategy: tf.distribute.Strategy, ds: tf.data.Dataset):
    """`ds` (global batches) split into per-replica batches, across workers too.

    Every worker builds the same global batches (a function of seed and step, see
    `data.TrainStream`), so each must take its replicas' slices of every batch: DATA sharding.
    Said explicitly because AUTO first looks for input files to shard (the preset sets have
    none: their batches are gathered by row from a cached split) and falls back to DATA with a
    warning.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(ds.with_options(options))


def split_cpu(n: int) -> None:
    """Expose the CPU as `n` logical devices (before TensorFlow initializes): lets MirroredStrategy
    be exercised on a machine without accelerators."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def free_loopback_ports(n: int) -> list[int]:
    """n free TCP ports on 127.0.0.1 (for a TF_CONFIG cluster of local workers: tests, bench)."""
    import socket

    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
