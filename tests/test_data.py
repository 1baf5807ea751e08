"""Real tfds data: range, shapes, deterministic resumable epochs, augmentation, clear errors."""

import numpy as np
import pytest

from nfi_tf import data
from nfi_tf.config import make_config
from nfi_tf.datasets import tfds_source
from nfi_tf.errors import DataUnavailableError, NfiError


def test_mnist_and_cifar10_info():
    mnist = data.load_info(make_config("mnist").data)
    assert (mnist.image_shape, mnist.num_classes, mnist.test_size) == ((28, 28, 1), 10, 10_000)
    cifar = data.load_info(make_config("cifar10").data)
    assert cifar.image_shape == (32, 32, 3)
    assert cifar.class_names[3] == "cat" and cifar.class_names[5] == "dog"


def test_train_stream_is_float_in_unit_range_and_covers_the_subset():
    cfg = make_config("mnist", {"data": {"train_examples": 300}}).data
    stream = data.TrainStream(cfg, batch_size=128, seed=0)
    batches = list(stream.epoch(0))
    assert stream.steps_per_epoch == 3 and [len(b[1]) for b in batches] == [128, 128, 44]
    x = np.concatenate([b[0] for b in batches])
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.99
    labels = np.sort(np.concatenate([b[1] for b in batches]))
    _, all_labels = data.load_arrays(cfg, "train", 300)
    np.testing.assert_array_equal(labels, np.sort(all_labels))  # a permutation of the subset
    # No autotuning thread: deleting an epoch's iterator waited for it (tens of seconds idle).
    assert stream.epoch(0).options().autotune.enabled is False


def test_epochs_reshuffle_and_resume_replays_the_same_batches():
    cfg = make_config("cifar10", {"data": {"train_examples": 512}}).data
    stream = data.TrainStream(cfg, batch_size=64, seed=3)
    full = [b for b in stream.epoch(1)]
    resumed = [b for b in stream.epoch(1, skip_batches=5)]
    assert len(resumed) == 3
    for a, b in zip(full[5:], resumed):
        np.testing.assert_array_equal(a[0], b[0])  # same images, same augmentation
        np.testing.assert_array_equal(a[1], b[1])
    other_epoch = next(iter(stream.epoch(2)))
    assert not np.array_equal(full[0][1], other_epoch[1])


def test_cifar_augmentation_is_crop_and_flip_of_the_original():
    cfg = make_config("cifar10", {"data": {"train_examples": 64}}).data
    images, _ = data.load_arrays(cfg, "train", 64)
    stream = data.TrainStream(cfg, batch_size=64, seed=0)
    order = np.random.default_rng([0, 0]).permutation(64)
    x, _ = next(iter(stream.epoch(0)))
    x = x.numpy()
    originals = images[order].astype(np.float32) / 255.0
    assert not np.allclose(x, originals)  # augmentation changed something
    padded = np.pad(originals, [(0, 0), (4, 4), (4, 4), (0, 0)])
    for i in range(8):  # each output is some 32x32 window of the padded image, maybe flipped
        found = any(np.allclose(x[i], w) or np.allclose(x[i][:, ::-1], w)
                    for dy in range(9) for dx in range(9)
                    for w in [padded[i, dy:dy + 32, dx:dx + 32]])
        assert found, i


def test_validation_split_is_the_held_out_tail_of_the_train_split():
    cfg = make_config("mnist", {"data": {"train_examples": 2048, "validation_examples": 512}}).data
    stream = data.TrainStream(cfg, batch_size=512, seed=0)
    assert stream.num_examples == 2048
    train_x = np.concatenate([b[0].numpy() for b in stream.epoch(0)])
    name, ds = data.epoch_eval_dataset(cfg, batch_size=200)
    assert name == "validation"
    val_x = np.concatenate([b[0].numpy() for b in ds])
    val_y = np.concatenate([b[1].numpy() for b in ds])
    assert val_x.shape == (512, 28, 28, 1)
    # The last 512 train images, read independently of nfi_tf.data's split logic (the size comes
    # from the prepared copy: an offline copy may hold fewer than MNIST's 60,000).
    import tensorflow_datasets as tfds

    size = data.load_info(cfg).train_size
    tail = tfds.as_numpy(tfds.load("mnist", split=f"train[{size - 512}:]", as_supervised=True,
                                   batch_size=-1))
    np.testing.assert_array_equal(val_x, tail[0].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(val_y, tail[1])
    # Disjoint from what training sees, image by image.
    train_keys = {x.tobytes() for x in train_x}
    assert not any(x.tobytes() in train_keys for x in val_x)
    # Without train_examples, training takes every image before the held-out tail.
    everything = make_config("mnist", {"data": {"validation_examples": 512}}).data
    assert data.training_split(everything) == f"train[:{size - 512}]"
    assert data.validation_split(everything) == f"train[{size - 512}:]"


def test_without_a_validation_split_the_epoch_evaluation_is_the_test_subset():
    cfg = make_config("mnist", {"data": {"eval_examples": 64}}).data
    name, ds = data.epoch_eval_dataset(cfg, batch_size=64)
    _, test_y = data.load_arrays(cfg, "test", 64)
    assert name == "test"
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in ds]), test_y)


def test_validation_split_that_does_not_fit_is_rejected():
    size = data.load_info(make_config("mnist").data).train_size
    too_many = make_config("mnist", {"data": {"train_examples": size - 511,
                                              "validation_examples": 512}}).data
    with pytest.raises(NfiError, match=f"Received: train_examples={size - 511}, "
                                       f"validation_examples=512"):
        data.training_split(too_many)
    data.training_split(too_many.__class__(train_examples=size - 512, validation_examples=512))
    everything = make_config("mnist", {"data": {"validation_examples": size}}).data
    with pytest.raises(NfiError, match=f"Received: validation_examples={size}"):
        data.TrainStream(everything, batch_size=64, seed=0)


def test_negative_validation_examples_is_rejected():
    with pytest.raises(NfiError, match="Received: validation_examples=-1"):
        make_config("mnist", {"data": {"validation_examples": -1}})


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(NfiError, match="unknown dataset 'not_a_dataset'"):
        data.load_info(make_config("not_a_dataset").data)


def test_missing_data_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "network_reachable", lambda *a, **k: False)
    cfg = make_config("mnist").data.__class__(dataset="mnist", data_dir=str(tmp_path))
    with pytest.raises(DataUnavailableError, match="--data_dir.*TFDS_DATA_DIR"):
        data.load_info(cfg)


def test_non_image_dataset_is_rejected():
    with pytest.raises(NfiError, match="not an image classification dataset"):
        data.load_info(make_config("imdb_reviews").data)


def test_an_opened_source_does_not_outlive_a_change_of_where_tfds_looks(tmp_path, monkeypatch):
    """Opened sources are cached per config and per tfds' data dir at the time of the call."""
    from tensorflow_datasets.core import constants

    cfg = make_config("mnist").data
    assert data.load_info(cfg).test_size == 10_000  # opened (and cached) where the data is
    monkeypatch.setattr(tfds_source, "network_reachable", lambda *a, **k: False)
    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    with pytest.raises(DataUnavailableError, match=f"not in {tmp_path}"):
        data.load_info(cfg)
