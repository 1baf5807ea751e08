"""The .npz source, `--dataset=PATH.npz` (or `npz:PATH`): `x` (N,H,W,C) uint8, or float in
[0, 1]; `y` (N,) integer labels; optionally `x_test`, `y_test` and `class_names`.

Arrays stored uncompressed (`np.savez`) are memory-mapped, so training reads only the rows of
each batch; a compressed file (`np.savez_compressed`) cannot be mapped and its arrays are
decompressed into memory once. Float images are scaled to uint8 (round(255 x)) as they are read,
so every source hands the pipeline the same uint8 pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from nfi_tf.datasets import registry
from nfi_tf.datasets.array_source import ArraySource, Rows
from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig

PREFIX = "npz:"

_CHUNK = 4096  # rows checked at a time


@dataclasses.dataclass(frozen=True)
class NpzArrays:
    path: str
    x: np.ndarray  # (N,H,W,C): memory-mapped when stored uncompressed
    y: np.ndarray  # int32
    x_test: np.ndarray
    y_test: np.ndarray
    train_rows: np.ndarray  # rows of x that are the train split (x_test given: all of them)
    class_names: tuple[str, ...]
    held_out: str | None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]


def image_shape(path: str) -> tuple[int, int, int]:
    """(height, width, channels) of `x`, read from the array header only."""
    return _shape(_member(path, "x"), path, "x")[1:]  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def load(path: str, test_share: float) -> NpzArrays:
    """The file's arrays, checked: shapes, pixel range, labels in range (a one-line error each)."""
    try:
        names = set(zipfile.ZipFile(path).namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise NfiError(f"{path} is not a readable .npz file ({type(e).__name__}): write it with "
                       f"np.savez(path, x=images, y=labels)") from e
    arrays = {n.removesuffix(".npy") for n in names}
    if not {"x", "y"} <= arrays:
        raise NfiError(f"{path} needs arrays 'x' (N,H,W,C images) and 'y' (N,) labels; it has "
                       f"{sorted(arrays)}: np.savez(path, x=images, y=labels)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise NfiError(f"{path} has only one of 'x_test' and 'y_test': give both, or neither "
                       f"(then a share of x is held out as the test split)")
    x = _images(_member(path, "x"), path, "x")
    y = _labels(_member(path, "y"), len(x), path, "y")
    names_given = ()
    if "class_names" in arrays:
        names_given = tuple(str(n) for n in np.load(path)["class_names"])
    num_classes = len(names_given) or int(y.max()) + 1
    _check_range(y, num_classes, path, "y", names_given)
    held_out = None
    if "x_test" in arrays:
        x_test = _images(_member(path, "x_test"), path, "x_test")
        y_test = _labels(_member(path, "y_test"), len(x_test), path, "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise NfiError(f"{path}: x_test images are {x_test.shape[1:]}, x images "
                           f"{x.shape[1:]}: both splits need one image shape")
        _check_range(y_test, num_classes, path, "y_test", names_given)
        train_rows = np.arange(len(x))
    else:
        order = np.random.default_rng(0).permutation(len(x))
        held = min(len(x) - 1, int(round(len(x) * test_share))) if len(x) > 1 else 0
        if held < 1:
            raise NfiError(f"the test split of {path} is empty ({test_share:.0%} of {len(x)} "
                           f"images rounds to 0): raise --test_share or add x_test and y_test")
        train_rows, test_rows = np.sort(order[:-held]), np.sort(order[-held:])
        x_test, y_test = _Rows(x, test_rows), y[test_rows]
        y = y[train_rows]
        held_out = (f"{path} has no x_test: the test split is a fixed {test_share:.0%} of x "
                    f"({held} images drawn with seed 0), held out of training (--test_share)")
    if num_classes < 2:
        raise NfiError(f"{path}: y has a single class ({num_classes}): a classifier needs at "
                       f"least 2 classes")
    class_names = names_given or tuple(str(i) for i in range(num_classes))
    return NpzArrays(path, x, y, x_test, y_test, train_rows, class_names, held_out)


class _Rows:
    """A row subset of an image array that indexes like one (the held-out test images)."""

    def __init__(self, images: np.ndarray, index: np.ndarray):
        self.images, self.index = images, index
        self.shape = (len(index), *images.shape[1:])
        self.dtype = images.dtype

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        return self.images[self.index[i]]


def _member(path: str, name: str) -> np.ndarray:
    """Array `name` of the .npz: memory-mapped when stored, else read into memory."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name + ".npy")
        stored = info.compress_type == zipfile.ZIP_STORED
    if not stored:
        with np.load(path, allow_pickle=False) as z:
            return z[name]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if dtype.hasobject:
        raise NfiError(f"{path}: array {name!r} holds Python objects; save numbers")
    if not int(np.prod(shape)):
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def _shape(a: np.ndarray, path: str, name: str) -> tuple[int, ...]:
    if a.ndim == 3:  # (N,H,W): one channel
        return (*a.shape, 1)
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise NfiError(f"{path}: {name!r} must be images (N,H,W,C) with C 1 or 3. "
                       f"Received: shape {a.shape}")
    return a.shape


def _images(a: np.ndarray, path: str, name: str) -> np.ndarray:
    shape = _shape(a, path, name)
    if shape[0] == 0:
        raise NfiError(f"{path}: {name!r} is empty (0 images): the split needs images")
    if a.ndim == 3:
        a = a.reshape(shape)
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise NfiError(f"{path}: {name!r} must be uint8 pixels or floats in [0, 1]. "
                       f"Received: dtype {a.dtype}")
    for i in range(0, len(a), _CHUNK):
        chunk = np.asarray(a[i:i + _CHUNK])
        lo, hi = float(chunk.min()), float(chunk.max())
        if not (0 <= lo and hi <= 1):
            raise NfiError(f"{path}: float images in {name!r} must be in [0, 1] (uint8 for "
                           f"0..255 pixels). Received: values in [{lo:g}, {hi:g}]")
    return a


def _labels(a: np.ndarray, n: int, path: str, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.shape != (n,):
        raise NfiError(f"{path}: {name!r} must be one label per image, shape ({n},). "
                       f"Received: shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or
            (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)))):
        raise NfiError(f"{path}: {name!r} must hold integer class labels. "
                       f"Received: dtype {a.dtype}")
    return a.astype(np.int64)


def _check_range(y: np.ndarray, num_classes: int, path: str, name: str,
                 names: tuple[str, ...]) -> None:
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        where = (f"class_names lists {num_classes} classes" if names
                 else f"the labels of y reach {num_classes - 1}")
        raise NfiError(f"{path}: {name!r} has label {int(bad[0])}, outside 0..{num_classes - 1} "
                       f"({where}): labels must be class indices 0..C-1; renumber them"
                       f"{'' if names else ' or list the classes in a class_names array'}")


# === The source ===

def open_source(cfg: DataConfig, path: str) -> ArraySource:
    """The file's arrays as a source: rows read (and resized) as training asks for them."""
    a = load(path, cfg.test_share)
    return ArraySource(Rows(a.x, a.train_rows, a.y), Rows.of(a.x_test, a.y_test),
                       a.class_names, cfg.image_size, a.held_out)


def _canonical(dataset: str) -> str:
    """npz:/absolute/path of an existing file."""
    path = registry.absolute(dataset.removeprefix(PREFIX))
    if not os.path.isfile(path):
        raise NfiError(f"no .npz file at {path}: --dataset=PATH.npz needs a file with arrays "
                       f"x (N,H,W,C) and y (N,). Received: dataset={dataset!r}")
    return PREFIX + path


SPEC = registry.SourceSpec(
    name="npz", form="PATH.npz (arrays x, y)", prefix=PREFIX,
    claims=lambda dataset: dataset.endswith(".npz"), canonical=_canonical,
    image_shape=lambda spec, data_dir: image_shape(spec.path),
    open=lambda cfg, spec, download: open_source(cfg, spec.path))
