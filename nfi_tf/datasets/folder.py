"""The image-folder source, `--dataset=folder:PATH` (or a bare directory): a class-per-folder
image directory, `PATH/<class>/*.png|jpg` (a held-out share of each class is the test split) or
`PATH/train/<class>/...` and `PATH/test/<class>/...`.

Class names are the sorted subfolder names (label i = the i-th). Only file names are held in
memory; images are read and decoded by TensorFlow in the tf.data pipeline. The image sizes are
read once from the PNG/JPEG headers (no decoding) so that mixed sizes are an error before
training starts, not a shape error in the middle of an epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from nfi_tf.datasets import registry, splits
from nfi_tf.datasets.data_source import BatchLoader, DataSource
from nfi_tf.datasets.pixels import resize
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig

PREFIX = "folder:"
EXTENSIONS = (".png", ".jpg", ".jpeg")
_LAYOUT = "PATH/<class>/*.png (or PATH/train/<class>/ and PATH/test/<class>/)"


@dataclasses.dataclass(frozen=True)
class FolderSplit:
    files: tuple[str, ...]
    labels: np.ndarray  # int32, one per file

    def __len__(self) -> int:
        return len(self.files)


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    root: str
    class_names: tuple[str, ...]
    train: FolderSplit
    test: FolderSplit
    sizes: dict[tuple[int, int], str]  # each (height, width) found -> one file that has it
    channels: int  # 1 when every image is grayscale, else 3 (alpha dropped)
    held_out: str | None  # how the test split was made when the folder has no test/ subfolder


def first_image_shape(root: str) -> tuple[int, int, int]:
    """(height, width, channels) of the first image (sorted), for deriving a preset cheaply."""
    base = os.path.join(root, "train") if os.path.isdir(os.path.join(root, "train")) else root
    for name in _class_dirs(base):
        files = _images(os.path.join(base, name))
        if files:
            h, w, c = image_header(files[0])
            return h, w, 1 if c <= 2 else 3
    raise NfiError(f"no PNG or JPEG images in {root}: lay the images out as {_LAYOUT}")


@functools.lru_cache(maxsize=8)
def scan(root: str, test_share: float) -> ImageFolder:
    """The folder's classes, files and image sizes (cached: a folder is scanned once)."""
    train_root, test_root = os.path.join(root, "train"), os.path.join(root, "test")
    split_layout = os.path.isdir(train_root)
    base = train_root if split_layout else root
    class_names = tuple(_class_dirs(base))
    if len(class_names) < 2:
        raise NfiError(f"{base} has {len(class_names)} class folder(s) "
                       f"{list(class_names)}: a classifier needs at least 2; put each class's "
                       f"images in its own subfolder: {_LAYOUT}")
    per_class = []
    for name in class_names:
        files = _images(os.path.join(base, name))
        if not files:
            raise NfiError(f"class folder {os.path.join(base, name)} has no PNG or JPEG images: "
                           f"add images or remove the folder")
        per_class.append(files)
    held_out = None
    if split_layout:
        if not os.path.isdir(test_root):
            raise NfiError(f"{root} has a train/ folder but no test/ folder: add "
                           f"{test_root}/<class>/ images, or put the class folders directly "
                           f"in {root} to hold out a share of them")
        extra = sorted(set(_class_dirs(test_root)) - set(class_names))
        if extra:
            raise NfiError(f"{test_root} has class folders that {train_root} lacks: {extra}; "
                           f"every test class must also be a training class")
        train = _split(per_class)
        test = _split([_images(os.path.join(test_root, n)) if os.path.isdir(
            os.path.join(test_root, n)) else [] for n in class_names])
        if not len(test):
            raise NfiError(f"the test split {test_root} is empty: add {test_root}/<class>/ "
                           f"images, or remove test/ and train/ to hold out a share")
    else:
        cut = [len(f) - _held(len(f), test_share) for f in per_class]
        train = _split([f[:k] for f, k in zip(per_class, cut)])
        test = _split([f[k:] for f, k in zip(per_class, cut)])
        held_out = (f"{root} has no test/ folder: the test split is the last {test_share:.0%} "
                    f"of each class's images (by file name), {len(test)} images held out of "
                    f"training (--test_share)")
        if not len(test):
            raise NfiError(f"the test split of {root} is empty ({test_share:.0%} of every class "
                           f"rounds to 0 images): raise --test_share or add a test/ folder")
    sizes: dict[tuple[int, int], str] = {}
    channels = 1
    for f in train.files + test.files:
        h, w, c = image_header(f)
        sizes.setdefault((h, w), f)
        channels = max(channels, 1 if c <= 2 else 3)
    return ImageFolder(root, class_names, train, test, sizes, channels, held_out)


def dataset(files: tuple[str, ...], labels: np.ndarray, channels: int,
            image_size: int | None) -> tf.data.Dataset:
    """(uint8 HWC image, int32 label) per file, in order, decoded (and resized) by TensorFlow."""
    ds = tf.data.Dataset.from_tensor_slices((list(files), labels.astype(np.int32)))
    load = functools.partial(decode, channels=channels, image_size=image_size)
    return ds.map(lambda f, y: (load(f), y), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)


def decode(path: tf.Tensor, channels: int, image_size: int | None) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    return resize(image, image_size)


def image_header(path: str) -> tuple[int, int, int]:
    """(height, width, channels) from a PNG or JPEG header; other files are decoded."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return h, w, {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(head[25], 3)
    if head.startswith(b"\xff\xd8"):
        found = _jpeg_header(head)
        if found:
            return found
    try:
        shape = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape
    except tf.errors.OpError as e:
        raise NfiError(f"{path} is not a readable PNG or JPEG image "
                       f"({str(e).splitlines()[0]}): remove or replace it") from e
    return int(shape[0]), int(shape[1]), int(shape[2])


def _jpeg_header(head: bytes) -> tuple[int, int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2:i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return h, w, head[i + 9] if i + 9 < len(head) else 3
        i += 2 + length
    return None


def _class_dirs(base: str) -> list[str]:
    return sorted(d for d in os.listdir(base)
                  if not d.startswith(".") and os.path.isdir(os.path.join(base, d)))


def _images(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(EXTENSIONS) and not f.startswith("."))


def _held(n: int, share: float) -> int:
    return 0 if n < 2 else min(n - 1, int(round(n * share)))


def _split(per_class: list[list[str]]) -> FolderSplit:
    """The files of every class in one fixed shuffled order (seed 0), so that the first N of a
    split (what evaluation reads) mix the classes."""
    files = [f for fs in per_class for f in fs]
    labels = np.concatenate([np.full(len(fs), i, np.int32) for i, fs in enumerate(per_class)])
    order = np.random.default_rng(0).permutation(len(files))
    return FolderSplit(tuple(files[i] for i in order), labels[order])


# === The source ===

class FolderSource(DataSource):
    """A scanned folder; training decodes each batch's files (`batch_loader`)."""

    def __init__(self, cfg: DataConfig, path: str):
        f = scan(path, cfg.test_share)
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
        self.sizes = {Split.TRAIN: len(f.train), Split.TEST: len(f.test)}
        self.held_out = f.held_out

    def _files(self, split: str) -> tuple[tuple[str, ...], np.ndarray]:
        name, a, b = splits.parse(split, self.sizes)
        part = self.folder.train if name == Split.TRAIN else self.folder.test
        return part.files[a:b], part.labels[a:b]

    def examples(self, split: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        files, labels = self._files(split)
        return dataset(files, labels, self.folder.channels, self.resize_to)

    def batch_loader(self, split: str) -> BatchLoader:
        files, labels = self._files(split)
        files, labels = tf.constant(list(files)), tf.constant(labels)
        channels, size, shape = self.folder.channels, self.resize_to, self.image_shape

        def load(idx):
            images = tf.map_fn(lambda f: decode(f, channels, size), tf.gather(files, idx),
                               fn_output_signature=tf.TensorSpec(shape, tf.uint8),
                               parallel_iterations=8)
            return images, tf.gather(labels, idx)

        return load


def _canonical(dataset: str) -> str:
    """folder:/absolute/path of an existing directory."""
    path = registry.absolute(dataset.removeprefix(PREFIX))
    if not os.path.isdir(path):
        raise NfiError(f"no image folder at {path}: --dataset=folder:PATH needs a directory "
                       f"with one subfolder of images per class (or PATH/train and PATH/test "
                       f"holding them). Received: dataset={dataset!r}")
    return PREFIX + path


SPEC = registry.SourceSpec(
    name="folder", form="folder:PATH (one subfolder of PNG/JPEG images per class)",
    prefix=PREFIX, claims=os.path.isdir,  # a bare directory path means folder:PATH
    canonical=_canonical,
    image_shape=lambda spec, data_dir: first_image_shape(spec.path),
    open=lambda cfg, spec, download: FolderSource(cfg, spec.path))
