"""A tfds split's images as a memory-mapped uint8 .npy file, so training reads only its batches.

What: `split_arrays` returns the images of one split (uint8 NHWC) as a read-only memory map of
a .npy file and its labels (int32, small, in memory), writing both on first use from the
split's examples, one chunk at a time (the split is never held whole in a Python list).

Why: MNIST and CIFAR-10 are trained by gathering the rows of a seeded permutation (see
`nfi_tf.data.TrainStream`), which needs random access to the split. They used to be held
whole in memory (47 MB and 154 MB as uint8, per training process); a memory map serves the
same rows, bit for bit, from the page cache, and later runs skip decoding the split again.

Where: `$NFI_TF_CACHE_DIR`, else `~/.cache/nfi_tf`. A file's name says the dataset, the split
spec (`train[:17435]`), a short hash of the tfds data dir it was read from and the image shape;
its header must also say the expected shape and dtype (the number of examples with it), and
its size must match that header, or it is rebuilt (a corrupt or foreign file too, never a
traceback). A directory that cannot be written (or a full disk) is one logged line and the
caller keeps the split in memory as before. Nothing here deletes a cache (one pair per split
spec: MNIST's 60,000 train images are 47 MB, CIFAR-10's 50,000 are 154 MB); removing the
directory between runs is always safe.

Atomicity: each file is written under a temporary name in the same directory
(`io_utils.atomic_path`: unique per process, so concurrent builders never share one), the
images' blocks allocated up front (a full disk is then an error, not a SIGBUS on a sparse map),
flushed and fsynced, then moved onto the final name with `os.replace`. A killed build leaves
only a temporary file, never a half-written cache under the final name; the next build removes
such leftovers once they are stale. The labels file is moved into place before the images
file, which thus marks a complete pair.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable

import numpy as np

from nfi_tf import io_utils

log = logging.getLogger(__name__)

ENV = "NFI_TF_CACHE_DIR"
_STALE_SECONDS = 3600  # a temporary file untouched this long belongs to a dead build
_warned: set[str] = set()  # directories already reported unwritable (one line per process)


class _Mismatch(Exception):
    """The split's examples are not what its metadata announced (count or image shape)."""


def cache_dir() -> str:
    """`$NFI_TF_CACHE_DIR`, else ~/.cache/nfi_tf."""
    return os.path.expanduser(os.environ.get(ENV) or os.path.join("~", ".cache", "nfi_tf"))


def base_name(dataset: str, split: str, data_dir: str, image_shape: tuple[int, ...]) -> str:
    """The cache files' common name, e.g. `mnist_train[:17435]_3f2a9c01_28x28x1`."""
    where = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:8]
    shape = "x".join(str(int(s)) for s in image_shape)
    safe = re.sub(r"[^\w.\-\[\]:]", "_", f"{dataset}_{split}")
    return f"{safe}_{where}_{shape}"


def paths(dataset: str, split: str, data_dir: str,
          image_shape: tuple[int, ...]) -> tuple[str, str]:
    """(images .npy, labels .npy) of a split in `cache_dir()`."""
    base = os.path.join(cache_dir(), base_name(dataset, split, data_dir, image_shape))
    return base + ".images.npy", base + ".labels.npy"


def split_arrays(dataset: str, split: str, data_dir: str, image_shape: tuple[int, ...],
                 num_examples: int,
                 chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(memory-mapped uint8 images, int32 labels) of a split, from its cache files, written
    first from `chunks()` ((images, labels) batches in split order) when missing or invalid.
    None when the cache cannot be written: the caller loads the split into memory instead."""
    images_path, labels_path = paths(dataset, split, data_dir, image_shape)
    shape = (int(num_examples), *(int(s) for s in image_shape))
    cached = _open(images_path, labels_path, shape)
    if cached is not None:
        return cached
    try:
        _build(images_path, labels_path, shape, chunks)
    except OSError as e:
        where = os.path.dirname(images_path)
        if where not in _warned:
            _warned.add(where)
            log.warning("nfi_tf: cannot write the dataset cache in %s (%s: %s): %s %s stays in "
                        "memory (set %s to a writable directory to memory-map it)", where,
                        type(e).__name__, e.strerror or e, dataset, split, ENV)
        return None
    except _Mismatch as e:
        log.warning("nfi_tf: not caching %s %s: %s; it stays in memory", dataset, split, e)
        return None
    cached = _open(images_path, labels_path, shape)
    if cached is None:  # written but unreadable: a file system that does not keep what it said
        log.warning("nfi_tf: the dataset cache %s does not read back: %s %s stays in memory",
                    images_path, dataset, split)
    return cached


def _header(path: str) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """(shape, dtype, data offset) of a C-ordered .npy file whose size matches its header,
    else None (missing, truncated, not a .npy, Fortran order)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            offset = f.tell()
        size = os.path.getsize(path)
    except (OSError, ValueError, EOFError, SyntaxError, TypeError):
        return None
    if fortran or dtype.hasobject:
        return None
    if size != offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        return None
    return tuple(shape), dtype, offset


def _open(images_path: str, labels_path: str,
          shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached pair when both files are complete and of the expected shape and dtype."""
    image_header = _header(images_path)
    label_header = _header(labels_path)
    if (image_header is None or label_header is None
            or image_header[:2] != (shape, np.dtype(np.uint8))
            or label_header[:2] != ((shape[0],), np.dtype(np.int32))):
        return None
    try:
        images = np.memmap(images_path, np.uint8, mode="r", offset=image_header[2], shape=shape)
        labels = np.load(labels_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return images, labels


def _build(images_path: str, labels_path: str, shape: tuple[int, ...],
           chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]) -> None:
    """Write the pair atomically (module docstring); OSError when the directory is unwritable."""
    os.makedirs(os.path.dirname(images_path), exist_ok=True)
    _remove_stale(images_path, labels_path)
    labels = np.empty(shape[0], np.int32)
    # io_utils.atomic_path: a temporary sibling, fsynced, then os.replace; removed on error.
    with io_utils.atomic_path(images_path) as images_tmp:
        images = np.lib.format.open_memmap(images_tmp, mode="w+", dtype=np.uint8, shape=shape)
        try:
            _allocate(images_tmp)
            n = 0
            for x, y in chunks():
                if (n + len(x) > shape[0] or x.shape[1:] != shape[1:] or len(y) != len(x)
                        or x.dtype != np.uint8):
                    raise _Mismatch(f"it yields {x.dtype} images {x.shape[1:]} after {n} of "
                                    f"uint8 {shape}")
                images[n:n + len(x)] = x
                labels[n:n + len(x)] = y
                n += len(x)
            if n != shape[0]:
                raise _Mismatch(f"it yields {n} examples, {shape[0]} expected")
            images.flush()
        finally:
            del images  # unmapped before the file is moved into place or removed
        with io_utils.atomic_path(labels_path) as labels_tmp, open(labels_tmp, "wb") as f:
            np.save(f, labels, allow_pickle=False)
        # The labels are in place first: the images file, moved last, marks a complete pair.


def _allocate(path: str) -> None:
    """Reserve the file's blocks: on a full disk this raises ENOSPC here, where writing into a
    sparse memory map would kill the process with SIGBUS."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # else the file system cannot reserve blocks (EOPNOTSUPP, EINVAL): write sparse
    finally:
        os.close(fd)


def _remove_stale(*finals: str) -> None:
    """Temporary files of builds that died (untouched for an hour; live builds keep writing)."""
    now = time.time()
    for final in finals:
        # io_utils.atomic_path's temporary names: .NAME.XXXXXXXX.tmp beside NAME
        pattern = os.path.join(os.path.dirname(final), "." + glob.escape(os.path.basename(final)))
        for path in glob.glob(pattern + ".*.tmp"):
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(path) > _STALE_SECONDS:
                    os.remove(path)
