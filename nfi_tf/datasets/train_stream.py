"""`TrainStream`: the training split as deterministic, resumable epochs of batches.

The order of epoch `e` is a permutation seeded by `(seed, e)` and the augmentation of a batch is
seeded by `(seed, e, batch)`, so the stream from any (epoch, batch) is a pure function of the
config: resuming a killed run rebuilds exactly the batches it had not yet seen. The rows of a
batch come from the source's `batch_loader` (a folder's files decoded, an .npz's rows read from
its memory-mapped arrays, MNIST's and CIFAR-10's from their split cache). A source without one
(any other tfds set) is streamed from its files through a seeded shuffle buffer, and a resumed
epoch skips the batches already seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from nfi_tf.datasets import info, registry
from nfi_tf.datasets.pixels import to_float
from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig


def augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """TRADES' CIFAR augmentation, per image: zero-pad 4, random 32x32 crop, random h-flip."""
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
    offsets = tf.random.stateless_uniform([b, 2], seed=seed, minval=0, maxval=9, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(h)[None, :]
    cols = offsets[:, 1:] + tf.range(w)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([b], seed=seed + 1, minval=0.0, maxval=1.0) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(cropped, axis=[2]), cropped)


def without_autotune_thread(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` without tf.data's autotuning thread. An epoch's iterator lives about a minute; that
    thread's wait between optimizations grows to tens of seconds meanwhile, and deleting the
    iterator at the epoch's end waited for it: 18-45 s of idle cores at the end of half the
    quickstart's epochs (2026-12-04, TF 2.21; none in 6 epoch ends without it, the same step
    time). Parallel calls and prefetch still use every core (AUTOTUNE without the tuner)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


class TrainStream:
    """The training split, served as deterministic, resumable epochs of batches."""

    def __init__(self, cfg: DataConfig, batch_size: int, seed: int, download: bool = True):
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        self._source = registry.open_source(cfg, download)
        self._split = info.training_split(cfg, download)
        self.num_examples = self._source.size(self._split)
        if not self.num_examples:
            raise NfiError(f"the training split of {cfg.dataset!r} is empty: add training images")
        self._load = self._source.batch_loader(self._split)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
        """Batches `skip_batches`.. of epoch `epoch`, as (float32 images in [0, 1], int32 labels)."""
        epoch_seed = tf.constant(self.seed * 1_000_003 + epoch, tf.int64)
        augmented = self.cfg.augment

        def finish(batch_id, images, labels):
            x = to_float(images)
            if augmented:
                x = augment(x, tf.stack([epoch_seed, batch_id]))
            return x, labels

        if self._load is None:  # a source streamed from its files
            ds = self._streamed(epoch, skip_batches)
            ds = ds.map(lambda batch_id, xy: finish(batch_id, xy[0], tf.cast(xy[1], tf.int32)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:
            gather = self._load
            ds = self._permuted(epoch, skip_batches)
            ds = ds.map(lambda batch_id, idx: finish(batch_id, *gather(idx)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return without_autotune_thread(ds.prefetch(tf.data.AUTOTUNE))

    def _streamed(self, epoch: int, skip_batches: int) -> tf.data.Dataset:
        """(batch number, (images, labels)) through a shuffle buffer seeded by (seed, epoch)."""
        shuffle_seed = int(np.random.default_rng([self.seed, epoch]).integers(2**31))
        ds = self._source.examples(self._split, shuffle_seed=shuffle_seed)
        ds = ds.shuffle(self.cfg.shuffle_buffer, seed=shuffle_seed,
                        reshuffle_each_iteration=False).batch(self.batch_size)
        return ds.enumerate().skip(skip_batches)

    def _permuted(self, epoch: int, skip_batches: int) -> tf.data.Dataset:
        """(batch number, row numbers) of the permutation seeded by (seed, epoch)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        order = order[skip_batches * self.batch_size:]
        ds = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        return ds.enumerate(start=skip_batches)
