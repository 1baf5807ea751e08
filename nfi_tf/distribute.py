"""tf.distribute strategies by name: the engine that scales training out.

- default:      one device (whatever TensorFlow picks: the GPU if there is one, else the CPU).
- mirrored:     MirroredStrategy, synchronous data parallelism over the GPUs of one machine
                (or, with no GPU, over the logical CPU devices configured before startup).
- multi_worker: MultiWorkerMirroredStrategy over machines described by the TF_CONFIG variable.
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
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise NfiError(f"--strategy=tpu but no TPU was found ({e}); use --strategy=default") from e
        return tf.distribute.TPUStrategy(resolver)
    raise NfiError(f"unknown strategy {name!r}: use default, mirrored, multi_worker or tpu")


def split_cpu(n: int) -> None:
    """Expose the CPU as `n` logical devices (before TensorFlow initializes): lets MirroredStrategy
    be exercised on a machine without accelerators."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
