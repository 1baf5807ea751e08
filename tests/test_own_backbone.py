"""Your own backbone and Keras' fit(): keras.applications backbones (MobileNetV2, weights None,
32x32) trained on real CIFAR-10 images, exported to ONNX with parity and served; a custom
feature-map backbone (D inferred, pooled); preprocessing inside the graph; fit() with Keras'
callbacks; the example in docs/own_model.md run as written."""

import csv
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO

import nfi_tf
from export.config import ExportConfig, SessionConfig
from export.exporter import export_model
from export.serve import Predictor
from nfi_tf import backbones, data, outputs
from nfi_tf.config import Config, make_config
from nfi_tf.errors import NfiError
from nfi_tf.models import ChannelAffine
from nfi_tf.models.classifier import POOLING_LAYER, PREPROCESSING_LAYER

CPU_ONLY = SessionConfig(providers=("CPUExecutionProvider",))
MOBILENET = "keras.applications.MobileNetV2"


@pytest.fixture(scope="module")
def cifar():
    """256 real CIFAR-10 training images in [0, 1] and their labels."""
    x, y = data.load_arrays(make_config("cifar10").data, "train", 256)
    return data.uint8_to_float(x), y


def _cifar_config(**model):
    return make_config("cifar10", {"model": {"backbone": MOBILENET, **model},
                                   "attack": {"num_steps": 2}, "train": {"learning_rate": 0.01}})


# === Config and registry ===

def test_application_backbone_config_resolves_d_and_rejects_bad_names():
    c = _cifar_config()
    assert backbones.feature_dims(c.model) == 1280 and c.model.robust_dims == 128
    assert Config.from_dict(c.to_dict()) == c  # config.json round trip
    with pytest.raises(NfiError) as e:
        _cifar_config(robust_dims=1280)
    assert "[1, 1279]" in str(e.value)
    with pytest.raises(NfiError) as e:
        make_config("cifar10", {"model": {"backbone": "keras.applications.MobileNetV9"}})
    message = str(e.value)
    assert "\n" not in message and "'MobileNetV9'" in message
    assert "keras.applications.MobileNetV2" in message and "40 in all" in message
    with pytest.raises(NfiError, match="nothing is downloaded"):
        _cifar_config(backbone_weights="imagenet")
    with pytest.raises(NfiError, match="for keras.applications backbones"):
        make_config("cifar10", {"model": {"backbone_weights": "/w.h5"}})


def test_registry_matches_keras_applications():
    assert set(backbones.APPLICATIONS) == {n for n in dir(keras.applications) if n[0].isupper()}
    for name in ("MobileNetV2", "MobileNetV3Small", "EfficientNetB0"):
        model = getattr(keras.applications, name)(include_top=False, weights=None,
                                                  input_shape=(32, 32, 3))
        assert model.output_shape[-1] == backbones.APPLICATIONS[name].feature_dims, name


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB0"])
def test_preprocessing_layer_equals_the_applications_preprocess_input(name):
    app = backbones.APPLICATIONS[name]
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    module = getattr(keras.applications, app.module)
    want = module.preprocess_input(x * 255.0)
    got = ChannelAffine.for_mode(app.preprocessing, 3)(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=1e-5)
    # The layer serializes as every nfi layer does.
    clone = ChannelAffine.from_config(ChannelAffine.for_mode(app.preprocessing, 3).get_config())
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(got))


# === build_classifier around your own backbone ===

def test_custom_backbone_returning_a_map_infers_d_and_pools():
    backbone = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(24, 3, strides=2),
                                 keras.layers.ReLU()], name="mine")
    model = nfi_tf.build_classifier(backbone=backbone, num_classes=5, robust_dims=8, method="nfi")
    x = np.random.default_rng(1).random((3, 16, 16, 3), dtype=np.float32)
    out = model(x, training=False)
    assert out[outputs.FEATURE].shape == (3, 24) and out[outputs.ROUTED].shape == (3, 5)
    np.testing.assert_allclose(np.asarray(out[outputs.FEATURE]),
                               np.mean(np.asarray(backbone(x)), axis=(1, 2)), atol=1e-6)
    assert model.get_layer(outputs.HEADS_LAYER).robust_dims == 8
    assert model.get_layer(POOLING_LAYER) is not None
    # A vector backbone is not pooled; d defaults to D // 2 for D <= 128; trades has one head.
    vector = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(40)])
    trades = nfi_tf.build_classifier(backbone=vector, num_classes=5, method="trades")
    assert trades.get_layer(outputs.HEADS_LAYER).robust_dims == 20
    assert outputs.BENIGN not in trades.output and POOLING_LAYER not in [
        layer.name for layer in trades.layers]
    with pytest.raises(ValueError, match="robust_dims must be in \\[1, 23\\]"):
        nfi_tf.build_classifier(backbone=backbone, num_classes=5, robust_dims=24)


# === A keras.applications backbone end to end ===

@pytest.fixture(scope="module")
def mobilenet_dir(cifar, tmp_path_factory):
    """MobileNetV2 (weights None, 32x32) trained a few fit() steps with nfi, saved as a model dir."""
    keras.utils.set_random_seed(0)
    x, y = cifar
    trainer = nfi_tf.make_trainer(_cifar_config(), image_shape=x.shape[1:], num_classes=10)
    before = [np.array(v) for v in trainer.classifier.trainable_variables]
    trainer.compile()
    history = trainer.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    after = trainer.classifier.trainable_variables
    moved = sum(not np.array_equal(a, np.asarray(b)) for a, b in zip(before, after))
    model_dir = str(tmp_path_factory.mktemp("mobilenet"))
    trainer.save_model_dir(model_dir)
    return model_dir, trainer, history, moved, len(after)


def test_mobilenet_v2_trains_on_cifar10_and_round_trips_keras_file(mobilenet_dir, cifar):
    model_dir, trainer, history, moved, total = mobilenet_dir
    assert np.isfinite(history.history["loss"][0]) and moved == total  # 4 steps moved every weight
    classifier = trainer.classifier
    assert classifier.get_layer(PREPROCESSING_LAYER).scale == [2.0, 2.0, 2.0]  # MobileNetV2: [-1, 1]
    assert Config.load(os.path.join(model_dir, "config.json")).model.backbone == MOBILENET
    x = cifar[0][:32]
    loaded = nfi_tf.load_model(model_dir)
    want, got = classifier(x, training=False), loaded(x, training=False)
    for name in (outputs.ROUTED, outputs.TRADEOFF, outputs.FEATURE):
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got[outputs.ROUTE]), np.asarray(want[outputs.ROUTE]))


def test_mobilenet_v2_exports_to_onnx_with_parity_and_serves(mobilenet_dir, cifar, tmp_path):
    model_dir, trainer, *_ = mobilenet_dir
    result = export_model(ExportConfig(model_dir=model_dir, output_dir=str(tmp_path / "export"),
                                       parity_examples=64))
    assert result.parity.ok and set(result.parity.route_agreement.values()) == {1.0}
    x = cifar[0][:40]
    served = Predictor(result.onnx, CPU_ONLY).predict(x)
    want = trainer.classifier(x, training=False)
    np.testing.assert_array_equal(served.routes, np.asarray(want[outputs.ROUTE]))
    np.testing.assert_allclose(served.logits, np.asarray(want[outputs.ROUTED]), atol=1e-4)


def test_local_backbone_weights_file_is_loaded(tmp_path):
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / "mobilenet_v2_notop.weights.h5")
    source.save_weights(path)
    model = nfi_tf.build_classifier(_cifar_config(backbone_weights=path).model, (32, 32, 3), 10)
    kernel = next(v for v in source.weights if v.path.endswith("Conv1/kernel"))
    loaded = next(v for v in model.weights if v.path.endswith("Conv1/kernel"))
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(kernel))
    with pytest.raises(NfiError, match="local weights file"):
        nfi_tf.build_classifier(_cifar_config(backbone_weights=str(tmp_path / "no.h5")).model,
                                (32, 32, 3), 10)
    with pytest.raises(NfiError, match="at least 32x32"):
        nfi_tf.build_classifier(_cifar_config().model, (28, 28, 3), 10)


# === fit() with Keras' callbacks ===

class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise RuntimeError("interrupted")


def test_fit_with_keras_callbacks_resumes_and_exports(tmp_path):
    config = make_config("mnist", {"attack": {"num_steps": 2}, "train": {"learning_rate": 0.01}})
    x, y = data.load_arrays(config.data, "train", 192)
    x = data.uint8_to_float(x)
    train = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(32)
    val = tf.data.Dataset.from_tensor_slices((x[128:], y[128:])).batch(32)
    keras.utils.set_random_seed(0)
    trainer = nfi_tf.make_trainer(config)  # small_cnn on MNIST's shape, from the dataset's info
    trainer.compile()
    log, ckpt, backup = tmp_path / "log.csv", tmp_path / "best.weights.h5", tmp_path / "backup"
    seen = []

    def callbacks():
        return [keras.callbacks.EarlyStopping(monitor="val_acc_routed", mode="max", patience=3),
                keras.callbacks.ModelCheckpoint(str(ckpt), monitor="val_acc_routed", mode="max",
                                                save_best_only=True, save_weights_only=True),
                keras.callbacks.CSVLogger(str(log), append=True),
                keras.callbacks.TensorBoard(str(tmp_path / "logs")),
                keras.callbacks.BackupAndRestore(str(backup)),
                keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))]

    with pytest.raises(RuntimeError, match="interrupted"):
        trainer.fit(train, validation_data=val, epochs=2, verbose=0,
                    callbacks=callbacks() + [_StopAfterFirstEpoch()])
    steps = int(trainer.optimizer.iterations.numpy())
    # A fresh trainer resumes from the backup: epoch 1 only, from epoch 0's weights and step.
    keras.utils.set_random_seed(1)
    resumed = nfi_tf.make_trainer(config)
    resumed.compile()
    history = resumed.fit(train, validation_data=val, epochs=2, verbose=0, callbacks=callbacks())
    assert seen == [0, 1] and steps == 4
    assert int(resumed.optimizer.iterations.numpy()) == 8
    assert list(history.epoch) == [1]
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for r in rows:  # epoch means of the batch metrics, validation means over 64 images
        assert 0 <= float(r["acc_routed"]) <= 1 and np.isfinite(float(r["loss"]))
        assert float(r["val_acc_routed"]) * 64 == pytest.approx(round(float(r["val_acc_routed"]) * 64))
    assert ckpt.exists() and os.listdir(tmp_path / "logs")
    assert not backup.exists() or not os.listdir(backup)  # removed once the run finished

    model_dir = resumed.save_model_dir(str(tmp_path / "model"))
    result = export_model(ExportConfig(model_dir=model_dir, output_dir=str(tmp_path / "export"),
                                       parity_examples=64))
    assert result.parity.ok and os.path.exists(result.onnx)
    served = Predictor(result.onnx, CPU_ONLY).predict(x[128:])
    want = resumed.classifier(x[128:], training=False)[outputs.ROUTED]
    np.testing.assert_array_equal(served.classes, np.argmax(np.asarray(want), axis=1))


def test_fit_records_a_custom_backbone_in_config_json(tmp_path):
    backbone = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3),
                                 keras.layers.ReLU()])
    classifier = nfi_tf.build_classifier(backbone=backbone, num_classes=10, robust_dims=5)
    trainer = nfi_tf.make_trainer(make_config("mnist"), classifier)
    m = trainer.config.model
    assert (m.backbone, m.method, m.robust_dims) == (backbones.CUSTOM, "nfi", 5)
    model_dir = trainer.save_model_dir(str(tmp_path / "m"), serving_examples=False)
    assert nfi_tf.load_trained(model_dir).config.model == m


# === The example in docs/own_model.md, as written ===

def _docs_block(heading: str) -> str:
    text = open(os.path.join(REPO, "docs", "own_model.md")).read()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_docs_own_backbone_example_runs(tmp_path, monkeypatch):
    code = _docs_block("## Your own backbone and `fit()`")
    assert "build_classifier(backbone=" in code and ".fit(" in code
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    exec(compile(code, "docs/own_model.md", "exec"), {"__name__": "docs_example"})
    with open(tmp_path / "own_fit.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    assert {"config.json", "model.keras", "serving_examples.npz"} <= set(
        os.listdir(tmp_path / "runs" / "own_backbone"))


def test_docs_registered_backbone_example_runs():
    code = _docs_block("### A new backbone by name")
    assert "backbones.register(" in code
    namespace = {"__name__": "docs_example"}
    try:
        exec(compile(code, "docs/own_model.md", "exec"), namespace)
        m = namespace["config"].model
        assert (m.backbone, m.width, m.robust_dims) == ("tiny_cnn", 4, 16)
        model = nfi_tf.build_classifier(m, (28, 28, 1), 10)
        assert model.output[outputs.FEATURE].shape[-1] == 32
    finally:
        backbones.unregister("tiny_cnn")
