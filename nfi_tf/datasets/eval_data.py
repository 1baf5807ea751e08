"""What evaluation reads: the first N images of a split, in memory, in order, unaugmented."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from nfi_tf.datasets import info, registry, splits
from nfi_tf.datasets.pixels import to_float
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig


def load_arrays(cfg: DataConfig, split: str, n: int | None = None,
                download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` examples of `split` ("train" or "test") as (uint8 NHWC images, int32
    labels); `split` may also be a sliced spec (e.g. from `training_split`) with `n` None."""
    spec = splits.first(split, n)
    images, labels = registry.open_source(cfg, download).arrays(spec)
    if not len(labels):
        raise NfiError(f"split {spec!r} of {cfg.dataset!r} is empty")
    return images, labels


def eval_dataset(cfg: DataConfig, batch_size: int, n: int | None = None,
                 split: str = Split.TEST, download: bool = True) -> tf.data.Dataset:
    """The first `n` test examples (default: cfg.eval_examples), in order, unaugmented."""
    images, labels = load_arrays(cfg, split, n or cfg.eval_examples, download)
    return _batched(images, labels, batch_size)


def validation_dataset(cfg: DataConfig, batch_size: int, download: bool = True) -> tf.data.Dataset:
    """The validation images (`validation_split`), in order, unaugmented."""
    images, labels = load_arrays(cfg, info.validation_split(cfg, download), None, download)
    return _batched(images, labels, batch_size)


def epoch_eval_dataset(cfg: DataConfig, batch_size: int,
                       download: bool = True) -> tuple[Split, tf.data.Dataset]:
    """What the per-epoch evaluation scores, and its name: the validation split when one is
    asked for (so nothing chosen from these numbers has seen test data), else the test subset."""
    if cfg.validation_examples:
        return Split.VALIDATION, validation_dataset(cfg, batch_size, download)
    return Split.TEST, eval_dataset(cfg, batch_size, download=download)


def _batched(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    return ds.map(lambda x, y: (to_float(x), y)).prefetch(tf.data.AUTOTUNE)
