"""Real image-classification data from tensorflow-datasets, as float32 images in [0, 1].

Images stay in [0, 1] pixel units (no normalization) so attack budgets keep their usual
meaning (8/255 on CIFAR-10, 0.3 on MNIST), as in TRADES.

Each split is decoded once into memory as uint8 (MNIST 13 MB, CIFAR-10 150 MB) and served by
index. The order of epoch `e` is a permutation seeded by `(seed, e)` and the augmentation of a
batch is seeded by `(seed, e, batch)`, so the stream from any (epoch, batch) is a pure function
of the config: resuming a killed run rebuilds exactly the batches it had not yet seen.

`validation_examples` > 0 holds the last N images of the train split out of training (they are
never in `training_split`) for the per-epoch evaluation, so settings chosen on those numbers
have not seen test data.
"""

from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from nfi_tf.config import DataConfig
from nfi_tf.errors import DataUnavailableError, NfiError

_FIX = ("point --data_dir (or the TFDS_DATA_DIR environment variable) at a folder holding "
        "the prepared tfds dataset, or run once on a machine with internet to download it")


# Some prepared copies (the offline CIFAR-10 here among them) lack the label-name file the
# official builder writes; these are the official names, in label order.
_KNOWN_CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
    "mnist": tuple(str(i) for i in range(10)),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    train_size: int
    test_size: int


def _data_dir(cfg: DataConfig) -> str | None:
    return cfg.data_dir or None


def _network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """A quick probe, so that offline machines fail in seconds, not after tfds' 3-minute retries."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # behind a proxy DNS may fail locally while downloads still work
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_known_dataset(name: str) -> None:
    """Fail first on a dataset name tfds does not know (before any other setting is checked)."""
    try:
        tfds.builder_cls(name)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NfiError(f"unknown dataset {name!r}: not a tensorflow-datasets name "
                       f"(e.g. mnist, cifar10, cifar100, svhn_cropped)") from e


def _builder(cfg: DataConfig, download: bool = True) -> tfds.core.DatasetBuilder:
    try:
        builder = tfds.builder(cfg.dataset, data_dir=_data_dir(cfg))
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NfiError(f"unknown dataset {cfg.dataset!r}: not a tensorflow-datasets name "
                       f"(e.g. mnist, cifar10, cifar100, svhn_cropped)") from e
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise NfiError(f"dataset {cfg.dataset!r} is not an image classification dataset "
                       f"(needs 'image' and 'label' features; has {sorted(features.keys())})")
    if not builder.is_prepared():
        where = builder.data_dir
        if not download or not _network_reachable():
            raise DataUnavailableError(
                f"dataset {cfg.dataset!r} is not in {where} and cannot be downloaded "
                f"(no network): {_FIX}")
        try:
            builder.download_and_prepare()
        except Exception as e:  # any download failure means the same thing to the user
            raise DataUnavailableError(
                f"dataset {cfg.dataset!r} is not in {where} and the download failed "
                f"({type(e).__name__}): {_FIX}") from e
    return builder


def load_info(cfg: DataConfig, download: bool = True) -> DatasetInfo:
    info = _builder(cfg, download).info
    shape = tuple(int(s) for s in info.features["image"].shape)
    if len(shape) != 3 or None in shape:
        raise NfiError(f"dataset {cfg.dataset!r} has images of variable shape {shape}; "
                       "only fixed-size image datasets are supported")
    label = info.features["label"]
    names = tuple(label.names or ())
    if not names or names == tuple(str(i) for i in range(label.num_classes)):
        names = _KNOWN_CLASS_NAMES.get(cfg.dataset, tuple(str(i) for i in range(label.num_classes)))
    return DatasetInfo(
        name=cfg.dataset,
        image_shape=shape,  # type: ignore[arg-type]
        num_classes=int(label.num_classes),
        class_names=names,
        train_size=int(info.splits["train"].num_examples),
        test_size=int(info.splits["test"].num_examples),
    )


def _split(name: str, n: int | None) -> str:
    return name if n is None else f"{name}[:{int(n)}]"


def training_split(cfg: DataConfig, download: bool = True) -> str:
    """The tfds split spec of the training images: the first `train_examples` of the train
    split (default: all), never reaching into its last `validation_examples` images."""
    v = cfg.validation_examples
    if not v:
        return _split("train", cfg.train_examples)
    size = int(_builder(cfg, download).info.splits["train"].num_examples)
    available = size - v
    if available < 1:
        raise NfiError(f"validation_examples must leave training images: the train split of "
                       f"{cfg.dataset!r} has {size}. Received: validation_examples={v}")
    n = available if cfg.train_examples is None else cfg.train_examples
    if n > available:
        raise NfiError(f"train_examples + validation_examples must be <= {size}, the size of the "
                       f"train split of {cfg.dataset!r} (the validation images are its last "
                       f"{v}). Received: train_examples={n}, validation_examples={v}")
    return f"train[:{n}]"


def validation_split(cfg: DataConfig, download: bool = True) -> str:
    """The tfds split spec of the validation images: the last `validation_examples` of the
    train split, disjoint from `training_split` (which checks that they fit)."""
    v = cfg.validation_examples
    if v <= 0:
        raise NfiError(f"no validation split was asked for. Received: validation_examples={v}")
    training_split(cfg, download)
    size = int(_builder(cfg, download).info.splits["train"].num_examples)
    return f"train[{size - v}:]"


def load_arrays(cfg: DataConfig, split: str, n: int | None = None,
                download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` examples of `split` as (uint8 NHWC images, int32 labels); `split` may
    also be a full tfds split spec (e.g. from `training_split`) with `n` None."""
    builder = _builder(cfg, download)
    ds = builder.as_dataset(split=_split(split, n), as_supervised=True, shuffle_files=False)
    images, labels = [], []
    for x, y in ds.batch(4096).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise NfiError(f"split {_split(split, n)!r} of {cfg.dataset!r} is empty")
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1], in a tf.data pipeline (`uint8_to_float`: numpy)."""
    return tf.cast(images, tf.float32) / 255.0


def uint8_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels (as `load_arrays` returns them) -> float32 in [0, 1], in numpy."""
    return images.astype(np.float32) / np.float32(255)


def _augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
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


class TrainStream:
    """The training split in memory, served as deterministic, resumable epochs of batches."""

    def __init__(self, cfg: DataConfig, batch_size: int, seed: int, download: bool = True):
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        images, labels = load_arrays(cfg, training_split(cfg, download), None, download)
        self.num_examples = len(labels)
        self._images = tf.constant(images)
        self._labels = tf.constant(labels)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
        """Batches `skip_batches`.. of epoch `epoch`, as (float32 images in [0, 1], int32 labels)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        order = order[skip_batches * self.batch_size:]
        ds = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        ds = ds.enumerate(start=skip_batches)
        images, labels, augment = self._images, self._labels, self.cfg.augment
        epoch_seed = tf.constant(self.seed * 1_000_003 + epoch, tf.int64)

        def load(batch_id, idx):
            x = to_float(tf.gather(images, idx))
            if augment:
                x = _augment(x, tf.stack([epoch_seed, batch_id]))
            return x, tf.gather(labels, idx)

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(cfg: DataConfig, batch_size: int, n: int | None = None,
                 split: str = "test", download: bool = True) -> tf.data.Dataset:
    """The first `n` test examples (default: cfg.eval_examples), in order, unaugmented."""
    images, labels = load_arrays(cfg, split, n or cfg.eval_examples, download)
    return _batched(images, labels, batch_size)


def validation_dataset(cfg: DataConfig, batch_size: int, download: bool = True) -> tf.data.Dataset:
    """The validation images (`validation_split`), in order, unaugmented."""
    images, labels = load_arrays(cfg, validation_split(cfg, download), None, download)
    return _batched(images, labels, batch_size)


def epoch_eval_dataset(cfg: DataConfig, batch_size: int,
                       download: bool = True) -> tuple[str, tf.data.Dataset]:
    """What the per-epoch evaluation scores, and its name: the validation split when one is
    asked for (so nothing chosen from these numbers has seen test data), else the test subset."""
    if cfg.validation_examples:
        return "validation", validation_dataset(cfg, batch_size, download)
    return "test", eval_dataset(cfg, batch_size, download=download)


def _batched(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    return ds.map(lambda x, y: (to_float(x), y)).prefetch(tf.data.AUTOTUNE)
