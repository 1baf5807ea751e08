"""Pixels: every source serves uint8 images; models and attacks see float32 in [0, 1].

Images stay in [0, 1] pixel units (no normalization) so attack budgets keep their usual
meaning (8/255 on CIFAR-10, 0.3 on MNIST), as in TRADES.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1], in a tf.data pipeline (`uint8_to_float`: numpy)."""
    return tf.cast(images, tf.float32) / 255.0


def uint8_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels (as `load_arrays` returns them) -> float32 in [0, 1], in numpy."""
    return images.astype(np.float32) / np.float32(255)


def resize(image: tf.Tensor, image_size: int | None) -> tf.Tensor:
    """uint8 image(s) -> uint8 image_size x image_size (area-averaged when shrinking)."""
    if image_size is None:
        return image
    x = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
