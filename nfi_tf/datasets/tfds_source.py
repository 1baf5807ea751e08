"""The tensorflow-datasets source: any `--dataset` value no other source claims is a tfds name.

Read from `--data_dir` (else TFDS_DATA_DIR, else tfds' default), downloaded when absent if
allowed and the network answers; otherwise one line names the fix. "test" is the set's test
split, else its validation split, else the last `test_share` of its train split.

MNIST and CIFAR-10 (`INDEXED`) keep the exact permuted batches they always had (their numbers
are unchanged), gathered by row from a memory-mapped uint8 cache file of the training split
(`nfi_tf.datasets.cache`: written once, atomically, under NFI_TF_CACHE_DIR or ~/.cache/nfi_tf;
a cache directory that cannot be written keeps the split in memory, as before). Any other tfds
set is streamed from its files through a seeded shuffle buffer (`shuffle_buffer`).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from nfi_tf.datasets import cache, registry, splits
from nfi_tf.datasets.data_source import BatchLoader, DataSource
from nfi_tf.datasets.pixels import resize
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import DataUnavailableError, NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig

FIX = ("point --data_dir (or the TFDS_DATA_DIR environment variable) at a folder holding "
       "the prepared tfds dataset, or run once on a machine with internet to download it")
# Trained on permuted rows, as they always were: gathered from a memory-mapped cache of the
# split (see the module docstring).
INDEXED = ("mnist", "cifar10")
# Some prepared copies (the offline CIFAR-10 here among them) lack the label-name file the
# official builder writes; these are the official names, in label order.
KNOWN_CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
    "mnist": tuple(str(i) for i in range(10)),
}


# === Finding the set ===

def network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """A quick probe, so that offline machines fail in seconds, not after tfds' 3-minute retries."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # behind a proxy DNS may fail locally while downloads still work
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def unknown_tfds(name: str) -> str:
    return (f"unknown dataset {name!r}: not a tensorflow-datasets name (e.g. mnist, cifar10, "
            f"cifar100, svhn_cropped; the list: python -c 'import tensorflow_datasets as tfds; "
            f"print(tfds.list_builders())'), nor folder:PATH or PATH.npz")


def tfds_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NfiError(unknown_tfds(name)) from e


def tfds_keys(name: str, features) -> tuple[str, str]:
    """(image feature, label feature) of a tfds set: its supervised keys, else image/label."""
    keys = dict(features.items()) if hasattr(features, "items") else {}
    image = next((k for k in ("image",) if k in keys), None) or next(
        (k for k, f in keys.items() if isinstance(f, tfds.features.Image)), None)
    label = next((k for k in ("label",) if k in keys), None) or next(
        (k for k, f in keys.items() if isinstance(f, tfds.features.ClassLabel)), None)
    if image is None or label is None or not isinstance(keys[label], tfds.features.ClassLabel):
        raise NfiError(f"dataset {name!r} is not an image classification dataset (needs an "
                       f"image feature and a class label; has {sorted(keys)}): pick a tfds "
                       f"image set, or pass folder:PATH or PATH.npz")
    return image, label


def builder(cfg: DataConfig, download: bool = True) -> tfds.core.DatasetBuilder:
    """The set's prepared builder, downloaded first when allowed (else one line names the fix)."""
    found = tfds_builder(cfg.dataset, cfg.data_dir or None)
    tfds_keys(cfg.dataset, found.info.features)
    if not found.is_prepared():
        where = found.data_dir
        if not download or not network_reachable():
            raise DataUnavailableError(
                f"dataset {cfg.dataset!r} is not in {where} and cannot be downloaded "
                f"(no network): {FIX}")
        try:
            found.download_and_prepare()
        except Exception as e:  # any download failure means the same thing to the user
            raise DataUnavailableError(
                f"dataset {cfg.dataset!r} is not in {where} and the download failed "
                f"({type(e).__name__}): {FIX}") from e
    return found


def image_shape(spec: registry.DatasetSpec, data_dir: str | None) -> registry.ImageShape:
    """(height, width, channels) from the set's feature spec (no data read)."""
    features = tfds_builder(spec.name, data_dir).info.features
    image_key, _ = tfds_keys(spec.name, features)
    h, w, c = features[image_key].shape
    return h, w, int(c or 3)


def check_known(spec: registry.DatasetSpec) -> None:
    """A registered tfds name (the builder class only: nothing is read)."""
    try:
        tfds.builder_cls(spec.name.split("/")[0].split(":")[0])
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NfiError(unknown_tfds(spec.name)) from e


def location(cfg: DataConfig) -> str:
    """Where tfds looks for the set now (`--data_dir`, TFDS_DATA_DIR, or tfds' default)."""
    from tensorflow_datasets.core import constants

    return cfg.data_dir or os.environ.get("TFDS_DATA_DIR") or constants.DATA_DIR


def _canonical(dataset: str) -> str:
    """A tfds name; a path that names nothing is an error here, not an unknown tfds name."""
    if dataset.startswith(("/", "./", "../", "~")):
        raise NfiError(f"no such file or folder: {registry.absolute(dataset)}. --dataset is "
                       f"{registry.forms()}. Received: dataset={dataset!r}")
    return dataset


# === The source ===

class TfdsSource(DataSource):
    """A tfds image classification set; "test" is its test split, else its validation split,
    else the last `test_share` of its train split."""

    def __init__(self, cfg: DataConfig, download: bool):
        self.cfg, self.download = cfg, download
        self.builder = builder(cfg, download)
        info = self.builder.info
        self.image_key, self.label_key = tfds_keys(cfg.dataset, info.features)
        self._choose_test_split(info.splits)
        self._read_image_shape(tuple(info.features[self.image_key].shape))
        label = info.features[self.label_key]
        self.num_classes = int(label.num_classes)
        self.class_names = _class_names(cfg.dataset, label)

    def _choose_test_split(self, tfds_splits) -> None:
        cfg = self.cfg
        if Split.TRAIN not in tfds_splits:
            raise NfiError(f"dataset {cfg.dataset!r} has no train split (it has "
                           f"{sorted(tfds_splits.keys())}): pick a set with one")
        total = int(tfds_splits[Split.TRAIN].num_examples)
        self.held, self.held_out = 0, None
        if Split.TEST in tfds_splits:
            self.test_name = Split.TEST
        elif Split.VALIDATION in tfds_splits:
            self.test_name = Split.VALIDATION
            self.held_out = f"{cfg.dataset} has no test split: its validation split is the test split"
        else:
            self.test_name = Split.TRAIN
            self.held = min(total - 1, int(round(total * cfg.test_share)))
            self.held_out = (f"{cfg.dataset} has no test or validation split: the test split is "
                             f"the last {cfg.test_share:.0%} of its train split ({self.held} "
                             f"images, train[{total - self.held}:]), held out of training "
                             f"(--test_share)")
        self.sizes = {Split.TRAIN: total - self.held,
                      Split.TEST: self.held or int(tfds_splits[self.test_name].num_examples)}

    def _read_image_shape(self, shape: tuple) -> None:
        cfg = self.cfg
        if len(shape) != 3 or shape[-1] is None:
            raise NfiError(f"dataset {cfg.dataset!r} has images of shape {shape}; only "
                           "(height, width, channels) images are supported")
        if None in shape[:2] and cfg.image_size is None:
            raise NfiError(f"dataset {cfg.dataset!r} has images of variable size {shape}: pass "
                           f"--image_size=S to resize every image to SxS")
        self.resize = cfg.image_size is not None and tuple(shape[:2]) != (cfg.image_size,) * 2
        self.image_shape = (int(cfg.image_size or shape[0]), int(cfg.image_size or shape[1]),
                            int(shape[2]))

    def physical(self, split: str) -> str:
        """The tfds split spec of a logical split spec."""
        if self.test_name == Split.TEST or not split.startswith(Split.TEST):
            return split  # a tfds set with a test split: the spec is tfds' own
        if not self.held:
            return self.test_name + split[len(Split.TEST):]
        _, a, b = splits.parse(split, self.sizes)
        start = self.sizes[Split.TRAIN]
        return f"train[{start + a}:{start + b}]"

    def examples(self, split: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        supervised = self.builder.info.supervised_keys == (self.image_key, self.label_key)
        read = tfds.ReadConfig(shuffle_seed=shuffle_seed) if shuffle_seed is not None else None
        ds = self.builder.as_dataset(split=self.physical(split), as_supervised=supervised,
                                     shuffle_files=shuffle_seed is not None, read_config=read)
        if not supervised:
            ds = ds.map(lambda e: (e[self.image_key], e[self.label_key]))
        if self.resize:
            size = self.cfg.image_size
            ds = ds.map(lambda x, y: (resize(x, size), y),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds

    def batch_loader(self, split: str) -> BatchLoader | None:
        if self.cfg.dataset not in INDEXED:
            return None  # streamed (TrainStream.epoch)
        cached = cache.split_arrays(
            self.cfg.dataset, self.physical(split), self.builder.data_dir, self.image_shape,
            self.size(split), lambda: self.examples(split).batch(4096).as_numpy_iterator())
        if cached is None:  # the cache directory cannot be written (logged)
            return self._in_memory_loader(split)
        images, labels = cached
        labels_t, shape = tf.constant(labels), self.image_shape

        def read(idx):
            return np.asarray(images[idx])  # the batch's rows only, copied from the map

        def load(idx):
            x = tf.numpy_function(read, [idx], tf.uint8, stateful=False)
            x.set_shape([None, *shape])
            return x, tf.gather(labels_t, idx)

        return load

    def _in_memory_loader(self, split: str) -> BatchLoader:
        """The whole split as a constant, gathered by row (what the cache replaces, bit for bit)."""
        images, labels = self.arrays(split)
        images, labels = tf.constant(images), tf.constant(labels)
        return lambda idx: (tf.gather(images, idx), tf.gather(labels, idx))


def _class_names(dataset: str, label) -> tuple[str, ...]:
    """The label feature's names; the official ones when a prepared copy lacks them."""
    names = tuple(label.names or ())
    numbered = tuple(str(i) for i in range(label.num_classes))
    if not names or names == numbered:
        names = KNOWN_CLASS_NAMES.get(dataset, numbered)
    return names


SPEC = registry.SourceSpec(
    name="tfds", fallback=True, canonical=_canonical, check_known=check_known, location=location,
    form="a tensorflow-datasets name (mnist, cifar10, cifar100, svhn_cropped, ...)",
    image_shape=image_shape, open=lambda cfg, spec, download: TfdsSource(cfg, download))
