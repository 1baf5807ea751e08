"""Training on your own data: an image folder and an .npz written from real MNIST and CIFAR-10
images, the preset derived from their images, and every bad input as one line (issue 24, 2)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from nfi_tf import data
from nfi_tf.config import PRESETS, make_config, preset_note
from nfi_tf.datasets import registry, tfds_source
from nfi_tf.errors import NfiError

TRAIN, TEST = 300, 100
# A few cheap steps: short PGD, 2 batches, a small per-epoch check.
CHEAP = ("--epochs=1", "--train_examples=128", "--batch_size=64", "--eval_examples=64",
         "--attack_steps=2", "--eval_attack_steps=2", "--lr_decay_epochs=")


def _real(dataset, split, n):
    return data.load_arrays(make_config(dataset).data, split, n)


def _write_pngs(root, images, labels, names=None):
    for i, (x, y) in enumerate(zip(images, labels)):
        folder = os.path.join(root, names[y] if names else str(y))
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:04d}.png"), tf.io.encode_png(x))


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """PATH/train/<digit>/*.png and PATH/test/<digit>/*.png from real MNIST images."""
    root = tmp_path_factory.mktemp("mnist_folder")
    arrays = {}
    for split, n in (("train", TRAIN), ("test", TEST)):
        arrays[split] = _real("mnist", split, n)
        _write_pngs(os.path.join(root, split), *arrays[split])
    return str(root), arrays


@pytest.fixture(scope="module")
def cifar_npz(tmp_path_factory):
    """x, y from real CIFAR-10 train images and x_test, y_test from its test images."""
    path = str(tmp_path_factory.mktemp("cifar_npz") / "cifar.npz")
    x, y = _real("cifar10", "train", TRAIN)
    x_test, y_test = _real("cifar10", "test", TEST)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    return path, (x, y, x_test, y_test)


def _by_bytes(images, labels):
    return {x.tobytes(): int(y) for x, y in zip(images, labels)}


def test_a_folder_streams_exactly_its_images_with_their_class_labels(mnist_folder):
    root, arrays = mnist_folder
    cfg = make_config(f"folder:{root}").data
    info = data.load_info(cfg)
    assert (info.image_shape, info.num_classes) == ((28, 28, 1), 10)
    assert info.class_names == tuple(str(i) for i in range(10))  # sorted subfolder names
    assert (info.train_size, info.test_size) == (TRAIN, TEST)
    stream = data.TrainStream(cfg, batch_size=128, seed=0)
    batches = list(stream.epoch(0))
    assert [len(b[1]) for b in batches] == [128, 128, 44]
    seen = {}
    for x, y in batches:
        pixels = np.round(x.numpy() * 255).astype(np.uint8)
        seen.update(_by_bytes(pixels, y.numpy()))
    assert seen == _by_bytes(*arrays["train"])  # every image once, with the label of its folder
    resumed = list(stream.epoch(0, skip_batches=2))
    np.testing.assert_array_equal(resumed[0][0], batches[2][0])
    # Evaluation's first N test images mix the classes (not the whole of class 0 first).
    images, labels = data.load_arrays(cfg, "test", 40)
    assert len(set(labels.tolist())) >= 5
    expected = _by_bytes(*arrays["test"])
    assert all(expected[x.tobytes()] == y for x, y in zip(images, labels))


def test_a_folder_without_test_holds_out_a_stated_share_of_each_class(mnist_folder, tmp_path):
    _, arrays = mnist_folder
    _write_pngs(str(tmp_path), *arrays["train"])
    cfg = make_config(str(tmp_path), {"data": {"test_share": 0.2}}).data
    assert cfg.dataset == f"folder:{tmp_path}"  # a bare folder path means folder:PATH
    info = data.load_info(cfg)
    assert info.train_size + info.test_size == TRAIN and 50 <= info.test_size <= 70
    note = data.split_note(cfg)
    assert "no test/ folder" in note and "20%" in note and str(info.test_size) in note
    train_x, _ = data.load_arrays(cfg, "train")
    test_x, test_y = data.load_arrays(cfg, "test")
    assert set(test_y.tolist()) == set(range(10))  # every class is in the test split
    assert not _by_bytes(train_x, np.zeros(len(train_x))).keys() & _by_bytes(test_x, test_y).keys()


def test_an_npz_is_memory_mapped_and_float_images_read_as_the_same_pixels(cifar_npz, tmp_path):
    path, (x, y, x_test, y_test) = cifar_npz
    cfg = make_config(path).data
    assert cfg.dataset == f"npz:{path}"
    info = data.load_info(cfg)
    assert (info.image_shape, info.train_size, info.test_size) == ((32, 32, 3), TRAIN, TEST)
    assert isinstance(registry.open_source(cfg).train.images, np.memmap)  # training reads rows, not the file
    assert cfg.augment  # the derived natural-image preset crops and flips; compare unaugmented
    stream = data.TrainStream(make_config(path, {"data": {"augment": False}}).data, 100, seed=1)
    got = np.concatenate([np.round(b[0].numpy() * 255) for b in stream.epoch(0)]).astype(np.uint8)
    assert _by_bytes(got, np.zeros(len(got))).keys() == _by_bytes(x, y).keys()
    floats = str(tmp_path / "floats.npz")
    np.savez_compressed(floats, x=x.astype(np.float32) / 255, y=y)  # no x_test: a held-out share
    fcfg = make_config(floats).data
    fx, fy = data.load_arrays(fcfg, "train")
    tx, ty = data.load_arrays(fcfg, "test")
    assert len(fy) + len(ty) == TRAIN and len(ty) == TRAIN // 10
    assert "no x_test" in data.split_note(fcfg)
    original = _by_bytes(x, y)
    assert all(original[a.tobytes()] == b for a, b in zip(np.concatenate([fx, tx]),
                                                         np.concatenate([fy, ty])))


def test_presets_are_derived_from_the_images_never_cifar10_in_silence(mnist_folder, cifar_npz,
                                                                       tmp_path):
    root, _ = mnist_folder
    gray = make_config(f"folder:{root}")
    assert (gray.attack.epsilon, gray.model.backbone) == (0.3, "small_cnn")  # MNIST-like
    assert gray.attack != make_config("cifar10").attack
    note = preset_note(gray.data.dataset, (28, 28, 1))
    assert "derived the mnist-like preset" in note and "28x28x1" in note
    path, (x, y, _, _) = cifar_npz
    rgb = make_config(path)
    assert rgb.attack.epsilon == pytest.approx(8 / 255, abs=5e-4)
    assert rgb.model.backbone == "wide_resnet"  # CIFAR-10's backbone, and the note says so
    assert "CIFAR-10's wide_resnet" in preset_note(rgb.data.dataset, (32, 32, 3))
    small = str(tmp_path / "small.npz")
    np.savez(small, x=x[:, ::2, ::2], y=y)
    assert make_config(small).model.backbone == "small_cnn"  # 16x16 RGB: a backbone to fit
    assert make_config(small, {"data": {"image_size": 64}}).model.backbone == "wide_resnet"
    for name in PRESETS:  # the presets themselves are untouched
        assert preset_note(name, (32, 32, 3)) is None


def test_tfds_sets_without_a_test_split_and_of_variable_size(monkeypatch):
    """A tfds set without test uses validation; without either, a held-out slice of train."""
    cfg = make_config("mnist").data
    src = tfds_source.TfdsSource(cfg, True)
    assert src.physical("test[:5]") == "test[:5]"
    src.test_name, src.held = "train", 6000
    src.sizes = {"train": 54_000, "test": 6000}
    assert src.physical("test[:5]") == "train[54000:54005]" and src.physical("test") == \
        "train[54000:60000]"
    with pytest.raises(NfiError, match="not an image classification dataset"):
        make_config("imdb_reviews")


def _one_line_error(*args):
    out = run_cli("nfi_tf.train", *args, *CHEAP, timeout=300)
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    errors = [line for line in out.stderr.splitlines() if "nfi_tf.train: error:" in line]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-1500:]
    return errors[0]


@pytest.mark.large  # three subprocesses: train, evaluate, export
def test_train_on_a_folder_then_evaluate_and_export_from_its_config(mnist_folder, tmp_path):
    root, _ = mnist_folder
    model_dir = str(tmp_path / "model")
    out = run_cli("nfi_tf.train", f"--dataset=folder:{root}", f"--model_dir={model_dir}", *CHEAP)
    assert out.returncode == 0, out.stderr[-2000:]
    preset_lines = [line for line in out.stdout.splitlines() if "has no preset" in line]
    assert len(preset_lines) == 1 and "mnist-like" in preset_lines[0]
    assert "wide_resnet" not in out.stdout and "done: 2 steps" in out.stdout
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["data"]["dataset"] == f"folder:{root}" and config["attack"]["epsilon"] == 0.3
    assert config["data"]["image_size"] is None and config["data"]["test_share"] == 0.1
    ev = run_cli("nfi_tf.evaluate", f"--model_dir={model_dir}", "--eval_examples=32",
                 "--attacks=clean", timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert f"folder:{root} nfi, 32 test images" in ev.stdout
    ex = run_cli("export.to_onnx", f"--model_dir={model_dir}", f"--output={tmp_path / 'export'}",
                 "--parity_examples=32", timeout=300)
    assert ex.returncode == 0, ex.stderr[-2000:]
    assert f"the folder:{root} test split" in ex.stdout
    assert os.path.exists(tmp_path / "export" / "model.onnx")


@pytest.mark.large
def test_train_on_an_npz_with_the_library(cifar_npz, tmp_path, capsys):
    from nfi_tf.training import train_and_evaluate

    path, _ = cifar_npz
    config = make_config(path, {
        "data": {"train_examples": 128, "eval_examples": 64},
        "model": {"backbone": "small_cnn"},
        "attack": {"num_steps": 2}, "eval_attack": {"num_steps": 2},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    summary = train_and_evaluate(config, str(tmp_path / "model"))
    printed = capsys.readouterr().out
    assert "derived the natural-image preset from its 32x32x3 images: epsilon 0.031" in printed
    assert summary["steps"] == 2 and summary["finished"] and summary["test_examples"] == 64
    assert os.path.exists(tmp_path / "model" / "model.keras")


def _bad_inputs(tmp):
    """(case, dataset, expected text) for every bad input, written under `tmp`."""
    x, y = _real("mnist", "train", 40)
    one = os.path.join(tmp, "one_class")
    _write_pngs(one, x[:5], np.zeros(5, np.int64))
    mixed = os.path.join(tmp, "mixed")
    _write_pngs(mixed, x[:10], y[:10] % 2)
    tf.io.write_file(os.path.join(mixed, "0", "big.png"),
                     tf.io.encode_png(np.zeros((32, 32, 1), np.uint8)))
    empty = os.path.join(tmp, "empty_test")
    _write_pngs(os.path.join(empty, "train"), x[:10], y[:10] % 2)
    os.makedirs(os.path.join(empty, "test", "0"))
    out_of_range = os.path.join(tmp, "range.npz")
    np.savez(out_of_range, x=x[:10], y=np.arange(10) % 3, class_names=np.array(["a", "b"]))
    negative = os.path.join(tmp, "negative.npz")
    np.savez(negative, x=x[:10], y=np.where(np.arange(10) == 3, -1, np.arange(10)))
    return [
        ("one class", f"folder:{one}", "a classifier needs at least 2"),
        ("mixed sizes", f"folder:{mixed}", "pass --image_size=S"),
        ("empty split", f"folder:{empty}", "is empty"),
        ("label out of range", out_of_range, "has label 2, outside 0..1"),
        ("negative label", negative, "has label -1, outside 0..9"),
        ("missing folder", f"folder:{tmp}/nope", "no image folder at"),
        ("missing npz", f"{tmp}/nope.npz", "no .npz file at"),
        ("unknown tfds name", "imagenet_nope", "tfds.list_builders()"),
    ]


CASES = ["one class", "mixed sizes", "empty split", "label out of range", "negative label",
         "missing folder", "missing npz", "unknown tfds name"]


def test_bad_input_is_a_one_line_library_error(tmp_path):
    cases = _bad_inputs(str(tmp_path))
    assert [c[0] for c in cases] == CASES
    for case, dataset, message in cases:
        with pytest.raises(NfiError, match=None) as e:
            data.load_info(make_config(dataset).data)
        assert message in str(e.value) and "\n" not in str(e.value), (case, str(e.value))


@pytest.mark.large  # one subprocess per case
@pytest.mark.parametrize("case", CASES)
def test_bad_input_through_the_cli_is_one_line_and_exit_2(case, tmp_path):
    dataset, message = {c: (d, m) for c, d, m in _bad_inputs(str(tmp_path))}[case]
    error = _one_line_error(f"--dataset={dataset}", f"--model_dir={tmp_path / 'model'}")
    assert message in error, error


def test_a_streamed_tfds_set_covers_its_split_resumes_and_resizes(monkeypatch):
    """Any tfds set other than mnist/cifar10 streams from its files: MNIST forced down that path."""
    monkeypatch.setattr(tfds_source, "INDEXED", ())
    cfg = make_config("mnist", {"data": {"train_examples": 300, "shuffle_buffer": 64}}).data
    stream = data.TrainStream(cfg, batch_size=128, seed=0)
    assert stream._load is None  # streamed from its files, not gathered by row
    batches = list(stream.epoch(0))
    assert [len(b[1]) for b in batches] == [128, 128, 44]
    x = np.concatenate([np.round(b[0].numpy() * 255) for b in batches]).astype(np.uint8)
    y = np.concatenate([b[1].numpy() for b in batches])
    assert _by_bytes(x, y) == _by_bytes(*_real("mnist", "train", 300))
    assert not np.array_equal(y, _real("mnist", "train", 300)[1])  # shuffled
    resumed = list(stream.epoch(0, skip_batches=1))
    np.testing.assert_array_equal(resumed[0][0], batches[1][0])
    big = make_config("mnist", {"data": {"train_examples": 64, "image_size": 32}}).data
    assert data.load_info(big).image_shape == (32, 32, 1)
    first, _ = next(iter(data.TrainStream(big, batch_size=64, seed=0).epoch(0)))
    assert first.shape == (64, 32, 32, 1)


def test_a_config_json_from_before_the_new_data_fields_still_loads(tmp_path):
    from nfi_tf.config import Config

    old = make_config("mnist").to_dict()
    for name in ("image_size", "test_share"):
        del old["data"][name]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    loaded = Config.load(str(path))
    assert (loaded.data.image_size, loaded.data.test_share) == (None, 0.1)
    assert loaded == make_config("mnist")


@pytest.mark.large  # two subprocesses: train, export
def test_an_npz_with_a_keras_applications_backbone_trains_exports_and_serves(cifar_npz, tmp_path):
    from export.config import SessionConfig
    from export.serve import Predictor

    path, (_, _, x_test, _) = cifar_npz
    model_dir = str(tmp_path / "model")
    out = run_cli("nfi_tf.train", f"--dataset={path}", f"--model_dir={model_dir}",
                  "--backbone=keras.applications.MobileNetV2", "--epochs=1", "--train_examples=64",
                  "--batch_size=32", "--eval_examples=32", "--attack_steps=1", "--eval_attack_steps=1",
                  "--lr_decay_epochs=")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done: 2 steps" in out.stdout
    ex = run_cli("export.to_onnx", f"--model_dir={model_dir}", f"--output={tmp_path / 'export'}",
                 "--parity_examples=32", timeout=600)
    assert ex.returncode == 0, ex.stderr[-2000:]
    import nfi_tf

    model = nfi_tf.load_model(model_dir)
    served = Predictor(str(tmp_path / "export" / "model.onnx"),
                       SessionConfig(providers=("CPUExecutionProvider",))).predict(x_test[:16])
    want = model(x_test[:16].astype(np.float32) / 255.0, training=False)
    np.testing.assert_array_equal(served.routes, np.asarray(want["route"]))
    np.testing.assert_allclose(served.logits, np.asarray(want["routed"]), atol=1e-4)
