"""A backbone is one module and one registration line (issue 34, "Backbones").

The toy backbone below lives in this file only: two strided 3x3 convolutions, global average
pooling and a 32-d dense feature. Registered with one line, it is a `--backbone` value like any
other: `make_config` gives it its own preset, validation asks its own checks and its D (for the
robust_dims range and default), `train_and_evaluate` builds and trains it on real MNIST, and the
saved model.keras reloads with `nfi_tf.load_model`.
"""

import json
import os

import keras
import numpy as np
import pytest
from keras import layers

import nfi_tf
from nfi_tf import backbones, data, outputs
from nfi_tf.config import Config, make_config
from nfi_tf.errors import NfiError, check

# === The toy backbone (what a new backbone module holds) ===

NAME, FEATURE_DIMS = "toy_cnn", 32


@keras.saving.register_keras_serializable(package="nfi_tf_tests")
class ToyBackbone(keras.Model):
    """conv(width, 3x3, stride 2) - conv(2 width) - global average pooling - dense 32."""

    def __init__(self, input_shape=(28, 28, 1), width=4, **kwargs):
        image = keras.Input(shape=tuple(input_shape), name="image")
        x = layers.Conv2D(width, 3, strides=2, activation="relu", name="conv1")(image)
        x = layers.Conv2D(2 * width, 3, strides=2, activation="relu", name="conv2")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        feature = layers.Dense(FEATURE_DIMS, activation="relu", name="feature")(x)
        super().__init__(inputs=image, outputs=feature, **kwargs)
        self.image_shape, self.width = tuple(input_shape), width

    def get_config(self):
        return {"input_shape": list(self.image_shape), "width": self.width, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_toy(model) -> None:
    """The toy's own rule: --width is its first convolution's filters, kept small."""
    check(1 <= model.width <= 16,
          f"toy_cnn width (its filters) must be in [1, 16]. Received: width={model.width}")


TOY = backbones.BackboneSpec(
    name=NAME, build=lambda model, shape: ToyBackbone(shape, model.width, name="backbone"),
    feature_dims=lambda model: FEATURE_DIMS, validate=check_toy, preset={"width": 4})


@pytest.fixture
def toy():
    with backbones.registered(TOY):  # the one registration line
        yield TOY
    assert backbones.lookup(NAME) is None  # gone again for every other test


# === The proof ===

def test_a_registered_backbone_is_a_backbone_value(toy):
    config = make_config("mnist", {"model": {"backbone": NAME, "robust_dims": 16}})
    m = config.model
    # Its own preset (width 4), its D for the robust_dims range; the config.json round trip.
    assert (m.backbone, m.width, m.robust_dims) == (NAME, 4, 16)
    assert backbones.feature_dims(m) == FEATURE_DIMS
    assert make_config("mnist", {"model": {"backbone": NAME}}).model.robust_dims == 16  # D // 2
    assert Config.from_dict(config.to_dict()) == config
    with pytest.raises(NfiError) as e:  # its own validation, one line
        make_config("mnist", {"model": {"backbone": NAME, "width": 64}})
    assert str(e.value) == "toy_cnn width (its filters) must be in [1, 16]. Received: width=64"
    with pytest.raises(NfiError, match=r"robust_dims must be in \[1, 31\] for the toy_cnn feature"):
        make_config("mnist", {"model": {"backbone": NAME, "robust_dims": 32}})
    with pytest.raises(NfiError, match="'toy_cnn'.*Received: backbone='toy_cn'"):
        make_config("mnist", {"model": {"backbone": "toy_cn"}})  # the choices name it
    with pytest.raises(NfiError, match="registered already"):
        backbones.register(TOY)


def test_an_unregistered_backbone_is_unknown():
    with pytest.raises(NfiError, match="backbone must be one of"):
        make_config("mnist", {"model": {"backbone": NAME}})


def test_it_trains_end_to_end_and_reloads(toy, tmp_path):
    from nfi_tf.training import train_and_evaluate

    config = make_config("mnist", {
        "data": {"train_examples": 256, "eval_examples": 64},
        "model": {"backbone": NAME, "robust_dims": 16},
        "attack": {"num_steps": 1}, "eval_attack": {"num_steps": 1},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    model_dir = str(tmp_path / "toy")
    summary = train_and_evaluate(config, model_dir, verbose=0)
    assert summary["finished"] and summary["steps"] == 4 and summary["backbone"] == NAME
    assert Config.load(os.path.join(model_dir, "config.json")) == config

    loaded = nfi_tf.load_model(model_dir)  # the toy's Keras class is registered above
    assert isinstance(loaded.get_layer("backbone"), ToyBackbone)
    assert loaded.get_layer(outputs.HEADS_LAYER).robust_dims == 16
    x, y = data.load_arrays(config.data, "test", 64)  # the per-epoch evaluation's images
    x = data.uint8_to_float(x)
    out = loaded(x, training=False)
    assert out[outputs.FEATURE].shape == (64, FEATURE_DIMS)
    # Same outputs as the trained model: its clean accuracies at the end of training, to the image.
    final = json.load(open(os.path.join(model_dir, "history.json")))[-1]["test"]
    for name in (outputs.ROUTED, outputs.TRADEOFF):
        accuracy = np.mean(np.argmax(np.asarray(out[name]), axis=-1) == y)
        assert accuracy == pytest.approx(final[f"clean_{name}"], abs=1e-6), name
    # And the spec rebuilds the same network from config.json: with the weights, the same numbers.
    rebuilt = nfi_tf.build_classifier(config.model, x.shape[1:], 10)
    rebuilt.set_weights(loaded.get_weights())
    again = rebuilt(x, training=False)
    for name in (outputs.ROUTED, outputs.FEATURE):
        np.testing.assert_allclose(np.asarray(again[name]), np.asarray(out[name]), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(again[outputs.ROUTE]), np.asarray(out[outputs.ROUTE]))
