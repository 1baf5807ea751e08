"""`ArraySource`: a source whose images are arrays (in memory or memory-mapped): an .npz file,
or any data a program makes (the toy source of tests/test_extension_point_data.py).

Images are uint8 (N,H,W,C) or floats in [0, 1], scaled to uint8 (round(255 x)) as they are
read, so every source hands the pipeline the same uint8 pixels. Training reads only the rows of
each batch (a memory-mapped array stays on disk).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from nfi_tf.datasets import splits
from nfi_tf.datasets.data_source import BatchLoader, DataSource
from nfi_tf.datasets.pixels import resize
from nfi_tf.datasets.splits import Split


def rows(images: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows `index` of an image array as uint8 (floats in [0, 1] scaled by 255, rounded)."""
    out = np.asarray(images[np.asarray(index)])
    if out.dtype != np.uint8:
        out = np.round(out.astype(np.float32) * 255).astype(np.uint8)
    return out


@dataclasses.dataclass(frozen=True)
class Rows:
    """One logical split: rows `index` of `images` (array-like, indexable by a row array), in
    split order, with their labels."""

    images: np.ndarray
    index: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, images: np.ndarray, labels: np.ndarray) -> Rows:
        """Every row of `images`, in order."""
        return cls(images, np.arange(len(labels)), np.asarray(labels))


class ArraySource(DataSource):
    """Two logical splits of array rows, resized to `image_size` when it is given."""

    def __init__(self, train: Rows, test: Rows, class_names: tuple[str, ...],
                 image_size: int | None = None, held_out: str | None = None):
        self.parts = {Split.TRAIN: train, Split.TEST: test}
        self.stored_shape = tuple(int(s) for s in train.images.shape[1:])
        h, w, c = self.stored_shape
        self.image_shape = (image_size or h, image_size or w, c)
        self.resize_to = image_size if image_size and (h, w) != (image_size,) * 2 else None
        self.num_classes, self.class_names = len(class_names), tuple(class_names)
        self.sizes = {Split.TRAIN: len(train.labels), Split.TEST: len(test.labels)}
        self.held_out = held_out

    @property
    def train(self) -> Rows:
        return self.parts[Split.TRAIN]

    def _rows(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image array, its row numbers, int32 labels) of a split spec."""
        name, lo, hi = splits.parse(split, self.sizes)
        part = self.parts[name]
        return part.images, np.asarray(part.index[lo:hi]), part.labels[lo:hi].astype(np.int32)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, index, labels = self._rows(split)
        x = rows(images, index)
        if self.resize_to:
            x = resize(tf.constant(x), self.resize_to).numpy()
        return x, labels

    def examples(self, split: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.arrays(split))

    def batch_loader(self, split: str) -> BatchLoader:
        images, index, labels = self._rows(split)
        stored, shape, size = self.stored_shape, self.image_shape, self.resize_to
        labels_t = tf.constant(labels)

        def read(idx):
            return rows(images, index[idx])

        def load(idx):
            x = tf.numpy_function(read, [idx], tf.uint8, stateful=False)
            x.set_shape([None, *stored])
            if size:
                x = resize(x, size)
                x.set_shape([None, *shape])
            return x, tf.gather(labels_t, idx)

        return load
