"""MNIST/CIFAR-10 training batches from the memory-mapped split cache (nfi_tf/datasets/cache.py):
bit for bit the batches of the in-memory split they replace, written once and atomically,
rebuilt when corrupt, and the in-memory split again when the cache cannot be written."""

import logging
import os

import numpy as np
import pytest

from nfi_tf import data
from nfi_tf.config import make_config
from nfi_tf.datasets import cache

SEED, BATCH, N = 7, 128, 1000


def _cfg(augment: bool = False):
    return make_config("mnist", {"data": {"train_examples": N, "augment": augment}}).data


def _first_batches(stream, epoch, n=3):
    return [(x.numpy(), y.numpy()) for x, y in stream.epoch(epoch).take(n)]


def _in_memory_batches(cfg, epoch):
    """The batches of the loader this cache replaced: the whole split as a constant."""
    stream = data.TrainStream(cfg, batch_size=BATCH, seed=SEED)
    stream._load = stream._source._in_memory_loader(stream._split)
    return _first_batches(stream, epoch)


def _assert_same(got, want):
    assert len(got) == len(want) == 3
    for (x, y), (x0, y0) in zip(got, want):
        assert x.dtype == x0.dtype == np.float32 and y.dtype == y0.dtype == np.int32
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)


def _files(where):
    """Every file in `where`, hidden ones (temporary files: .NAME.XXXX.tmp) too."""
    return sorted(os.listdir(where))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    where = str(tmp_path / "cache")
    monkeypatch.setenv("NFI_TF_CACHE_DIR", where)
    return where


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
def test_cached_batches_are_the_in_memory_batches_bit_for_bit(cache_dir, augment):
    cfg = _cfg(augment)
    stream = data.TrainStream(cfg, batch_size=BATCH, seed=SEED)
    assert any(f.endswith(".images.npy") for f in _files(cache_dir))  # the cache path is taken
    images, labels = data.load_arrays(cfg, "train", N)
    epochs = []
    for epoch in (0, 1):
        got = _first_batches(stream, epoch)
        epochs.append(got)
        _assert_same(got, _in_memory_batches(cfg, epoch))
        # And the permutation of (seed, epoch) over the real images, read independently.
        order = np.random.default_rng([SEED, epoch]).permutation(N)
        for b, (x, y) in enumerate(got):
            rows = order[b * BATCH:(b + 1) * BATCH]
            np.testing.assert_array_equal(y, labels[rows])
            if not augment:
                np.testing.assert_array_equal(x, data.uint8_to_float(images[rows]))
    assert not np.array_equal(epochs[0][0][1], epochs[1][0][1])  # the epochs differ


def test_the_cache_is_written_once_and_reused(cache_dir):
    cfg = _cfg()
    want = _first_batches(data.TrainStream(cfg, batch_size=BATCH, seed=SEED), 0)
    names = _files(cache_dir)
    assert len(names) == 2 and not any(".tmp" in n for n in names), names
    images_name = next(n for n in names if n.endswith(".images.npy"))
    assert images_name.startswith(f"mnist_train[:{N}]_") and "_28x28x1." in images_name
    path = os.path.join(cache_dir, images_name)
    mapped = np.load(path, mmap_mode="r")
    assert (mapped.shape, mapped.dtype) == ((N, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(mapped, data.load_arrays(cfg, "train", N)[0])
    paths = [os.path.join(cache_dir, n) for n in names]
    for p in paths:  # an old time stamp: any rewrite would move it, even within a clock tick
        os.utime(p, ns=(10**18, 10**18))
    before = {p: (os.stat(p).st_mtime_ns, os.stat(p).st_ino) for p in paths}
    _assert_same(_first_batches(data.TrainStream(cfg, batch_size=BATCH, seed=SEED), 0), want)
    assert {p: (os.stat(p).st_mtime_ns, os.stat(p).st_ino) for p in paths} == before
    assert _files(cache_dir) == names


# Each damage puts a new file in place (never rewrites the mapped one, which an earlier stream
# of this process still maps): a cache half written by a writer that was not atomic, ...
def _swap(path, content: bytes):
    with open(path + ".new", "wb") as f:
        f.write(content)
    os.replace(path + ".new", path)


def _truncate(path):
    _swap(path, open(path, "rb").read()[:os.path.getsize(path) // 2])


def _garbage(path):
    _swap(path, b"not a .npy file at all")


def _other_shape(path):
    np.save(path + ".new.npy", np.zeros((N - 1, 28, 28, 1), np.uint8))
    os.replace(path + ".new.npy", path)


def _int64_labels(path):
    np.save(path + ".new.npy", np.zeros(N, np.int64))
    os.replace(path + ".new.npy", path.replace(".images.npy", ".labels.npy"))


def _no_labels(path):
    os.remove(path.replace(".images.npy", ".labels.npy"))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _other_shape, _int64_labels, _no_labels],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_corrupt_or_mismatched_cache_is_rebuilt(cache_dir, damage):
    cfg = _cfg()
    want = _first_batches(data.TrainStream(cfg, batch_size=BATCH, seed=SEED), 0)
    names = _files(cache_dir)
    path = os.path.join(cache_dir, next(n for n in names if n.endswith(".images.npy")))
    damage(path)
    _assert_same(_first_batches(data.TrainStream(cfg, batch_size=BATCH, seed=SEED), 0), want)
    assert _files(cache_dir) == names  # rebuilt in place, no temporary file left
    mapped = np.load(path, mmap_mode="r")
    assert (mapped.shape, mapped.dtype) == ((N, 28, 28, 1), np.uint8)
    labels = np.load(path.replace(".images.npy", ".labels.npy"))
    assert (labels.shape, labels.dtype) == ((N,), np.int32)


def test_an_unwritable_cache_dir_keeps_the_split_in_memory_with_one_logged_line(
        tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    where = str(blocker / "cache")  # under a file: no directory can be made there (even as root)
    monkeypatch.setenv("NFI_TF_CACHE_DIR", where)
    caplog.set_level(logging.WARNING, logger=cache.__name__)
    cfg = _cfg(augment=True)
    for _ in range(2):
        _assert_same(_first_batches(data.TrainStream(cfg, batch_size=BATCH, seed=SEED), 1),
                     _in_memory_batches(cfg, 1))
    lines = [r for r in caplog.records if r.name == cache.__name__]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING  # once, not an error
    assert where in lines[0].getMessage() and "NFI_TF_CACHE_DIR" in lines[0].getMessage()
    assert "\n" not in lines[0].getMessage()
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


# --- The cache module on synthetic arrays (no tfds) ---

def _chunks(x, y, size=3, fail_after=None):
    def gen():
        for i in range(0, len(x), size):
            if fail_after is not None and i >= fail_after:
                raise OSError(28, "No space left on device")
            yield x[i:i + size], y[i:i + size]
    return gen


def _synthetic(n=10):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 4, 5, 3), dtype=np.uint8), rng.integers(0, 9, n).astype(np.int32)


def test_the_file_name_says_dataset_split_data_dir_and_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("NFI_TF_CACHE_DIR", str(tmp_path))
    a, _ = cache.paths("cifar10", "train[:17435]", "/data/a/cifar10/3.0.2", (32, 32, 3))
    b, _ = cache.paths("cifar10", "train[:17435]", "/data/b/cifar10/3.0.2", (32, 32, 3))
    assert os.path.dirname(a) == str(tmp_path)
    assert os.path.basename(a).startswith("cifar10_train[:17435]_")
    assert a.endswith("_32x32x3.images.npy")
    assert a != b  # another data dir is another cache
    monkeypatch.delenv("NFI_TF_CACHE_DIR")
    assert cache.cache_dir() == os.path.expanduser("~/.cache/nfi_tf")


def test_a_failed_build_leaves_nothing_and_a_dead_builds_file_is_not_trusted(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NFI_TF_CACHE_DIR", str(tmp_path))
    x, y = _synthetic()
    caplog.set_level(logging.WARNING, logger=cache.__name__)
    assert cache.split_arrays("toy", "train", "/d", (4, 5, 3), 10, _chunks(x, y, fail_after=6)) is None
    assert os.listdir(tmp_path) == []  # the temporary file is gone
    assert [r.name for r in caplog.records if r.name == cache.__name__] == [cache.__name__]
    # A build killed mid-way leaves its temporary file: never read, removed once stale.
    images_path, _ = cache.paths("toy", "train", "/d", (4, 5, 3))
    dead = os.path.join(tmp_path, "." + os.path.basename(images_path) + ".abc123.tmp")
    np.lib.format.open_memmap(dead, mode="w+", dtype=np.uint8, shape=(10, 4, 5, 3))
    os.utime(dead, (0, 0))
    images, labels = cache.split_arrays("toy", "train", "/d", (4, 5, 3), 10, _chunks(x, y))
    assert isinstance(images, np.memmap) and os.path.samefile(images.filename, images_path)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)
    assert not os.path.exists(dead) and not [n for n in _files(tmp_path) if ".tmp" in n]


def test_a_split_that_yields_other_than_announced_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NFI_TF_CACHE_DIR", str(tmp_path))
    x, y = _synthetic()
    assert cache.split_arrays("toy", "train", "/d", (4, 5, 3), 11, _chunks(x, y)) is None
    assert cache.split_arrays("toy", "train", "/d", (4, 5, 3), 9, _chunks(x, y)) is None
    assert cache.split_arrays("toy", "train", "/d", (5, 4, 3), 10, _chunks(x, y)) is None
    assert os.listdir(tmp_path) == []
