"""`DataSource`: what every source answers once opened (`SourceSpec.open` builds one).

A source serves uint8 NHWC images and int32 labels of its two logical splits (`splits.Split`),
after any resize to `image_size` (so `image_shape` is what the model sees). A subclass gives
the facts (`image_shape`, `num_classes`, `class_names`, `sizes`, `held_out`) and `examples`;
`arrays` and `size` follow from them. Training gathers batches by row through `batch_loader`
(deterministic permutations, `nfi_tf.datasets.train_stream`); a source that cannot read rows
at random returns None there and is streamed from `examples(split, shuffle_seed)` through a
shuffle buffer instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from nfi_tf.datasets import splits
from nfi_tf.datasets.splits import Split

# int32 row numbers of a split -> (uint8 images (n, H, W, C), int32 labels (n,)), in graph mode
BatchLoader = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class DataSource:
    """An opened dataset, seen through the logical splits "train" and "test"."""

    image_shape: tuple[int, int, int]  # after any resize to image_size
    num_classes: int
    class_names: tuple[str, ...]  # label i is class_names[i]
    sizes: dict[Split, int]  # examples in each logical split
    held_out: str | None = None  # how the test split was made when the set has none of its own

    def size(self, split: str) -> int:
        """Examples in a split spec (`train`, `test[:100]`, ...)."""
        _, a, b = splits.parse(split, self.sizes)
        return b - a

    def examples(self, split: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        """(uint8 HWC image, integer label) of a split spec, in order (a streamed source reads
        its files in an order seeded by `shuffle_seed` when given)."""
        raise NotImplementedError

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split spec as (uint8 NHWC images, int32 labels), in order."""
        images = [np.zeros((0, *self.image_shape), np.uint8)]
        labels = [np.zeros(0, np.int32)]
        for x, y in self.examples(split).batch(4096).as_numpy_iterator():
            images.append(x)
            labels.append(y)
        return np.concatenate(images), np.concatenate(labels).astype(np.int32)

    def batch_loader(self, split: str) -> BatchLoader | None:
        """Rows of a split spec by number, for training's permuted batches; None: streamed."""
        return None
