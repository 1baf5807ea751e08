"""Image-classification data as float32 images in [0, 1]: a tfds set, an image folder or an .npz.

`--dataset` names the source (nfi_tf.datasets.spec): a tensorflow-datasets name, `folder:PATH`
(one subfolder of PNG/JPEG images per class, or PATH/train and PATH/test holding them) or
`PATH.npz` (arrays x, y, optionally x_test, y_test). Every source is seen through two logical
splits, "train" and "test": a tfds set without a test split uses its validation split, else
(like a folder without test/ or an .npz without x_test) a stated held-out share of its training
images (`test_share`, said at the start of training: `split_note`). `image_size` resizes every
image to a square (needed when the sizes differ).

Images stay in [0, 1] pixel units (no normalization) so attack budgets keep their usual
meaning (8/255 on CIFAR-10, 0.3 on MNIST), as in TRADES.

Training streams its batches. The order of epoch `e` is a permutation seeded by `(seed, e)`
and the augmentation of a batch is seeded by `(seed, e, batch)`, so the stream from any
(epoch, batch) is a pure function of the config: resuming a killed run rebuilds exactly the
batches it had not yet seen. A folder's batches are read and decoded from its files, an .npz's
rows from its memory-mapped arrays. The two preset sets, MNIST and CIFAR-10, keep the exact
permuted batches they always had (their numbers are unchanged), gathered by row from a uint8
cache file of the training split, memory-mapped (nfi_tf.datasets.cache: written once, atomically,
under NFI_TF_CACHE_DIR or ~/.cache/nfi_tf; a cache directory that cannot be written keeps the
split in memory, as before). Any other tfds set is streamed from its files through a seeded
shuffle buffer (`shuffle_buffer`) and a resumed epoch skips the batches already seen.

`validation_examples` > 0 holds the last N images of the train split out of training (they are
never in `training_split`) for the per-epoch evaluation, so settings chosen on those numbers
have not seen test data. Evaluation reads the first N test images into memory (`load_arrays`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import socket

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from nfi_tf.config import DataConfig
from nfi_tf.datasets import cache, folder, npz, probe, spec
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
    """Fail first on a dataset that cannot exist (an unknown tfds name, a missing folder or
    file), before any other setting is checked."""
    s = spec.parse(name)
    if s.kind == spec.TFDS:
        try:
            tfds.builder_cls(name.split("/")[0].split(":")[0])
        except tfds.core.registered.DatasetNotFoundError as e:
            raise NfiError(probe.unknown_tfds(name)) from e


def _builder(cfg: DataConfig, download: bool = True) -> tfds.core.DatasetBuilder:
    builder = probe.tfds_builder(cfg.dataset, _data_dir(cfg))
    probe.tfds_keys(cfg.dataset, builder.info.features)
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


# === Sources: each seen as the logical splits "train" and "test" ===

_SPLIT = re.compile(r"^(train|test)(?:\[(\d*):(\d*)\])?$")
# Trained on permuted rows, as they always were: gathered from a memory-mapped cache of the
# split (see the module docstring).
_INDEXED = ("mnist", "cifar10")


def _parse_split(split: str, size: int) -> tuple[str, int, int]:
    """'train[a:b]' -> ('train', a, b) within a split of `size` examples."""
    m = _SPLIT.match(split)
    if not m:
        raise NfiError(f"split must be train or test, optionally sliced [a:b] with integers. "
                       f"Received: split={split!r}")
    a = int(m.group(2)) if m.group(2) else 0
    b = int(m.group(3)) if m.group(3) else size
    return m.group(1), min(a, size), min(b, size)


class _TfdsSource:
    """A tfds image classification set; "test" is its test split, else its validation split,
    else the last `test_share` of its train split."""

    kind = spec.TFDS

    def __init__(self, cfg: DataConfig, download: bool):
        self.cfg, self.download = cfg, download
        self.builder = _builder(cfg, download)
        info = self.builder.info
        self.image_key, self.label_key = probe.tfds_keys(cfg.dataset, info.features)
        splits = info.splits
        if "train" not in splits:
            raise NfiError(f"dataset {cfg.dataset!r} has no train split (it has "
                           f"{sorted(splits.keys())}): pick a set with one")
        total = int(splits["train"].num_examples)
        self.held = 0
        self.held_out = None
        if "test" in splits:
            self.test_name = "test"
        elif "validation" in splits:
            self.test_name = "validation"
            self.held_out = f"{cfg.dataset} has no test split: its validation split is the test split"
        else:
            self.test_name = "train"
            self.held = min(total - 1, int(round(total * cfg.test_share)))
            self.held_out = (f"{cfg.dataset} has no test or validation split: the test split is "
                             f"the last {cfg.test_share:.0%} of its train split ({self.held} "
                             f"images, train[{total - self.held}:]), held out of training "
                             f"(--test_share)")
        self.sizes = {"train": total - self.held,
                      "test": self.held or int(splits[self.test_name].num_examples)}
        shape = tuple(info.features[self.image_key].shape)
        if len(shape) != 3 or shape[-1] is None:
            raise NfiError(f"dataset {cfg.dataset!r} has images of shape {shape}; only "
                           "(height, width, channels) images are supported")
        if None in shape[:2] and cfg.image_size is None:
            raise NfiError(f"dataset {cfg.dataset!r} has images of variable size {shape}: pass "
                           f"--image_size=S to resize every image to SxS")
        self.resize = cfg.image_size is not None and tuple(shape[:2]) != (cfg.image_size,) * 2
        size = cfg.image_size or shape[0]
        self.image_shape = (int(size), int(cfg.image_size or shape[1]), int(shape[2]))
        label = info.features[self.label_key]
        names = tuple(label.names or ())
        if not names or names == tuple(str(i) for i in range(label.num_classes)):
            names = _KNOWN_CLASS_NAMES.get(cfg.dataset,
                                           tuple(str(i) for i in range(label.num_classes)))
        self.num_classes, self.class_names = int(label.num_classes), names

    def physical(self, split: str) -> str:
        """The tfds split spec of a logical split spec."""
        if self.test_name == "test" or not split.startswith("test"):
            return split  # a tfds set with a test split: the spec is tfds' own
        if not self.held:
            return self.test_name + split[len("test"):]
        _, a, b = _parse_split(split, self.sizes["test"])
        start = self.sizes["train"]
        return f"train[{start + a}:{start + b}]"

    def size(self, split: str) -> int:
        name, a, b = _parse_split(split, self.sizes[split.split("[")[0]])
        return b - a

    def examples(self, split: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        supervised = self.builder.info.supervised_keys == (self.image_key, self.label_key)
        read = tfds.ReadConfig(shuffle_seed=shuffle_seed) if shuffle_seed is not None else None
        ds = self.builder.as_dataset(split=self.physical(split), as_supervised=supervised,
                                     shuffle_files=shuffle_seed is not None, read_config=read)
        if not supervised:
            ds = ds.map(lambda e: (e[self.image_key], e[self.label_key]))
        if self.resize:
            size = self.cfg.image_size
            ds = ds.map(lambda x, y: (folder.resize(x, size), y),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds

    def batch_loader(self, split: str):
        if self.cfg.dataset not in _INDEXED:
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

    def _in_memory_loader(self, split: str):
        """The whole split as a constant, gathered by row (what the cache replaces, bit for bit)."""
        images, labels = load_arrays(self.cfg, split, None, self.download)
        images, labels = tf.constant(images), tf.constant(labels)
        return lambda idx: (tf.gather(images, idx), tf.gather(labels, idx))


class _FolderSource:
    kind = spec.FOLDER

    def __init__(self, cfg: DataConfig, path: str):
        self.cfg = cfg
        f = folder.scan(path, cfg.test_share)
        if len(f.sizes) > 1 and cfg.image_size is None:
            (s1, f1), (s2, f2) = list(f.sizes.items())[:2]
            raise NfiError(f"{path} has images of {len(f.sizes)} sizes ({s1[0]}x{s1[1]} in "
                           f"{os.path.relpath(f1, path)}, {s2[0]}x{s2[1]} in "
                           f"{os.path.relpath(f2, path)}, ...): pass --image_size=S to resize "
                           f"every image to SxS")
        h, w = next(iter(f.sizes))
        self.folder = f
        self.image_shape = (cfg.image_size or h, cfg.image_size or w, f.channels)
        self.resize_to = cfg.image_size if cfg.image_size and (
            len(f.sizes) > 1 or (h, w) != (cfg.image_size,) * 2) else None
        self.num_classes, self.class_names = len(f.class_names), f.class_names
        self.sizes = {"train": len(f.train), "test": len(f.test)}
        self.held_out = f.held_out

    def _files(self, split: str):
        name, a, b = _parse_split(split, self.sizes[split.split("[")[0]])
        part = self.folder.train if name == "train" else self.folder.test
        return part.files[a:b], part.labels[a:b]

    def size(self, split: str) -> int:
        return len(self._files(split)[0])

    def examples(self, split: str) -> tf.data.Dataset:
        files, labels = self._files(split)
        return folder.dataset(files, labels, self.folder.channels, self.resize_to)

    def batch_loader(self, split: str):
        files, labels = self._files(split)
        files, labels = tf.constant(list(files)), tf.constant(labels)
        channels, size, shape = self.folder.channels, self.resize_to, self.image_shape

        def load(idx):
            images = tf.map_fn(lambda f: folder.decode(f, channels, size), tf.gather(files, idx),
                               fn_output_signature=tf.TensorSpec(shape, tf.uint8),
                               parallel_iterations=8)
            return images, tf.gather(labels, idx)

        return load


class _NpzSource:
    kind = spec.NPZ

    def __init__(self, cfg: DataConfig, path: str):
        self.cfg = cfg
        self.arrays = a = npz.load(path, cfg.test_share)
        h, w, c = a.image_shape
        self.image_shape = (cfg.image_size or h, cfg.image_size or w, c)
        self.resize_to = cfg.image_size if cfg.image_size and (h, w) != (cfg.image_size,) * 2 \
            else None
        self.num_classes, self.class_names = len(a.class_names), a.class_names
        self.sizes = {"train": len(a.y), "test": len(a.y_test)}
        self.held_out = a.held_out

    def _rows(self, split: str):
        """(image array, its row numbers, labels) of a logical split."""
        name, lo, hi = _parse_split(split, self.sizes[split.split("[")[0]])
        a = self.arrays
        if name == "train":
            return a.x, a.train_rows[lo:hi], a.y[lo:hi].astype(np.int32)
        return a.x_test, np.arange(lo, hi), a.y_test[lo:hi].astype(np.int32)

    def size(self, split: str) -> int:
        return len(self._rows(split)[1])

    def arrays_of(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, rows, labels = self._rows(split)
        x = npz.rows(images, rows)
        if self.resize_to:
            x = folder.resize(tf.constant(x), self.resize_to).numpy()
        return x, labels

    def examples(self, split: str) -> tf.data.Dataset:
        x, y = self.arrays_of(split)
        return tf.data.Dataset.from_tensor_slices((x, y))

    def batch_loader(self, split: str):
        images, rows, labels = self._rows(split)
        shape, size = self.image_shape, self.resize_to
        labels_t = tf.constant(labels)

        def read(idx):
            return npz.rows(images, rows[idx])

        def load(idx):
            x = tf.numpy_function(read, [idx], tf.uint8, stateful=False)
            x.set_shape([None, *self.arrays.image_shape])
            if size:
                x = folder.resize(x, size)
                x.set_shape([None, *shape])
            return x, tf.gather(labels_t, idx)

        return load


def _source(cfg: DataConfig, download: bool = True):
    """The dataset's source, cached per config and per where tfds would look: a source built
    while the data was there must not outlive a change of TFDS_DATA_DIR (or tfds' default)."""
    from tensorflow_datasets.core import constants

    where = cfg.data_dir or os.environ.get("TFDS_DATA_DIR") or constants.DATA_DIR
    return _source_at(cfg, download, where)


@functools.lru_cache(maxsize=16)
def _source_at(cfg: DataConfig, download: bool, where: str):
    del where  # part of the cache key only
    s = spec.parse(cfg.dataset)
    if s.kind == spec.FOLDER:
        return _FolderSource(cfg, s.path)
    if s.kind == spec.NPZ:
        return _NpzSource(cfg, s.path)
    return _TfdsSource(cfg, download)


def load_info(cfg: DataConfig, download: bool = True) -> DatasetInfo:
    src = _source(cfg, download)
    return DatasetInfo(
        name=cfg.dataset,
        image_shape=tuple(src.image_shape),  # type: ignore[arg-type]
        num_classes=int(src.num_classes),
        class_names=tuple(src.class_names),
        train_size=src.sizes["train"],
        test_size=src.sizes["test"],
    )


def split_note(cfg: DataConfig, download: bool = True) -> str | None:
    """How the test split was made when the dataset has none of its own (None when it has)."""
    return _source(cfg, download).held_out


def _split(name: str, n: int | None) -> str:
    return name if n is None else f"{name}[:{int(n)}]"


def training_split(cfg: DataConfig, download: bool = True) -> str:
    """The split spec of the training images: the first `train_examples` of the train
    split (default: all), never reaching into its last `validation_examples` images."""
    v = cfg.validation_examples
    if not v:
        return _split("train", cfg.train_examples)
    size = _source(cfg, download).sizes["train"]
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
    """The split spec of the validation images: the last `validation_examples` of the
    train split, disjoint from `training_split` (which checks that they fit)."""
    v = cfg.validation_examples
    if v <= 0:
        raise NfiError(f"no validation split was asked for. Received: validation_examples={v}")
    training_split(cfg, download)
    size = _source(cfg, download).sizes["train"]
    return f"train[{size - v}:]"


def load_arrays(cfg: DataConfig, split: str, n: int | None = None,
                download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` examples of `split` ("train" or "test") as (uint8 NHWC images, int32
    labels); `split` may also be a sliced spec (e.g. from `training_split`) with `n` None."""
    src = _source(cfg, download)
    spec_ = _split(split, n)
    if src.kind == spec.NPZ:
        images, labels = src.arrays_of(spec_)
        if not len(labels):
            raise NfiError(f"split {spec_!r} of {cfg.dataset!r} is empty")
        return images, labels
    images, labels = [], []
    for x, y in src.examples(spec_).batch(4096).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise NfiError(f"split {spec_!r} of {cfg.dataset!r} is empty")
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
    """The training split, served as deterministic, resumable epochs of batches."""

    def __init__(self, cfg: DataConfig, batch_size: int, seed: int, download: bool = True):
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        self._source = _source(cfg, download)
        self._split = training_split(cfg, download)
        self.num_examples = self._source.size(self._split)
        if not self.num_examples:
            raise NfiError(f"the training split of {cfg.dataset!r} is empty: add training images")
        self._load = self._source.batch_loader(self._split)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
        """Batches `skip_batches`.. of epoch `epoch`, as (float32 images in [0, 1], int32 labels)."""
        augment = self.cfg.augment
        epoch_seed = tf.constant(self.seed * 1_000_003 + epoch, tf.int64)
        if self._load is None:  # a tfds set streamed from its files
            shuffle_seed = int(np.random.default_rng([self.seed, epoch]).integers(2**31))
            ds = self._source.examples(self._split, shuffle_seed=shuffle_seed)
            ds = ds.shuffle(self.cfg.shuffle_buffer, seed=shuffle_seed,
                            reshuffle_each_iteration=False).batch(self.batch_size)
            ds = ds.enumerate().skip(skip_batches)

            def augmented(batch_id, xy):
                x = to_float(xy[0])
                if augment:
                    x = _augment(x, tf.stack([epoch_seed, batch_id]))
                return x, tf.cast(xy[1], tf.int32)

            return _without_autotune_thread(ds.map(augmented, num_parallel_calls=tf.data.AUTOTUNE,
                                                   deterministic=True).prefetch(tf.data.AUTOTUNE))
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        order = order[skip_batches * self.batch_size:]
        ds = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        ds = ds.enumerate(start=skip_batches)
        gather = self._load

        def load(batch_id, idx):
            images, labels = gather(idx)
            x = to_float(images)
            if augment:
                x = _augment(x, tf.stack([epoch_seed, batch_id]))
            return x, labels

        return _without_autotune_thread(ds.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                               deterministic=True).prefetch(tf.data.AUTOTUNE))


def _without_autotune_thread(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` without tf.data's autotuning thread. An epoch's iterator lives about a minute; that
    thread's wait between optimizations grows to tens of seconds meanwhile, and deleting the
    iterator at the epoch's end waited for it: 18-45 s of idle cores at the end of half the
    quickstart's epochs (2026-12-04, TF 2.21; none in 6 epoch ends without it, the same step
    time). Parallel calls and prefetch still use every core (AUTOTUNE without the tuner)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


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
