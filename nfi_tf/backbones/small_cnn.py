"""TRADES' SmallCNN for MNIST, as a feature extractor (the 200-d input of its last dense layer),
and its registry entry `small_cnn` (reads --dropout)."""

import keras
from keras import layers

from nfi_tf.backbones import registry
from nfi_tf.backbones.init import torch_conv_kaiming, torch_dense_bias, torch_dense_kernel

NAME = "small_cnn"
FEATURE_DIMS = 200  # TRADES' SmallCNN: the input of its last dense layer


@keras.saving.register_keras_serializable(package="nfi_tf")
class SmallCNNBackbone(keras.Model):
    """conv 32-32-pool-64-64-pool (3x3, no padding), FC 1024->200, dropout, 200->200.

    Initialized as TRADES' PyTorch model (Kaiming-normal convs, PyTorch's default dense init),
    so that training dynamics match its scripts. Output: the feature vector `f(x)`, 200-d.

    Args:
        input_shape: (height, width, channels); TRADES uses (28, 28, 1).
        dropout: dropout rate after the first dense layer (TRADES: 0.5).
    """

    def __init__(self, input_shape=(28, 28, 1), dropout=0.5, **kwargs):
        # === Layers ===
        image = keras.Input(shape=tuple(input_shape), name="image")
        x = image
        for i, filters in enumerate((32, 32, 64, 64), start=1):
            x = layers.Conv2D(filters, 3, activation="relu", kernel_initializer=torch_conv_kaiming(),
                              bias_initializer="zeros", name=f"conv{i}")(x)
            if i % 2 == 0:
                x = layers.MaxPooling2D(2, name=f"maxpool{i // 2}")(x)
        x = layers.Flatten(name="flatten")(x)
        fan_in = x.shape[-1]
        x = layers.Dense(200, activation="relu", kernel_initializer=torch_dense_kernel(),
                         bias_initializer=torch_dense_bias(fan_in), name="fc1")(x)
        x = layers.Dropout(dropout, name="drop")(x)
        feature = layers.Dense(FEATURE_DIMS, activation="relu",
                               kernel_initializer=torch_dense_kernel(),
                               bias_initializer=torch_dense_bias(x.shape[-1]), name="fc2")(x)
        # === Functional Model ===
        super().__init__(inputs=image, outputs=feature, **kwargs)
        # === Config ===
        self.image_shape = tuple(input_shape)
        self.dropout = dropout
        self.feature_dims = FEATURE_DIMS

    def get_config(self):
        return {"input_shape": list(self.image_shape), "dropout": self.dropout, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _build(model_config, image_shape) -> SmallCNNBackbone:
    return SmallCNNBackbone(input_shape=image_shape, dropout=model_config.dropout, name="backbone")


SPEC = registry.BackboneSpec(name=NAME, build=_build, feature_dims=lambda model: FEATURE_DIMS)
