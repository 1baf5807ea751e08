"""TRADES' WideResNet (pre-activation, no dropout) as a feature extractor, and its registry
entry `wide_resnet` (reads --depth and --width; CIFAR-10's preset is WRN-34-10).

WRN-34-10 (the CIFAR-10 default) has widths 16-160-320-640 and 5 blocks a stage; TRADES'
PyTorch file builds an extra `sub_block1` that `forward` never uses, left out here. Output:
the feature vector after the final BN-ReLU and global average pooling, 64*width dims.
"""

import keras
from keras import layers

from nfi_tf.backbones import registry
from nfi_tf.backbones.init import wrn_conv
from nfi_tf.errors import check

NAME = "wide_resnet"

# PyTorch BatchNorm2d defaults: momentum 0.1 (Keras 0.9), eps 1e-5.
_BN = {"momentum": 0.9, "epsilon": 1e-5}


def feature_dims(width: int) -> int:
    """WideResNet-depth-k: the last stage has 64k channels, globally average-pooled."""
    return 64 * width


def check_shape(depth: int, width: int) -> None:
    """A one-line NfiError (a ValueError) unless depth is 6n+4 with n >= 1 and width >= 1."""
    check(depth >= 10 and (depth - 4) % 6 == 0,
          f"WideResNet depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 34, ...). "
          f"Received: depth={depth}")
    check(width >= 1, f"WideResNet width must be >= 1. Received: width={width}")


def _conv(filters, kernel, stride, name):
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer=wrn_conv(), name=name)


def _basic_block(x, out_planes, stride, name):
    in_planes = x.shape[-1]
    equal = in_planes == out_planes
    act = layers.ReLU(name=f"{name}_relu1")(layers.BatchNormalization(**_BN, name=f"{name}_bn1")(x))
    if stride != 1 and equal:
        raise ValueError(f"a strided block must change width. Received: {in_planes}->{out_planes}")
    # As TRADES: when the width changes, the shortcut also sees the activated input.
    shortcut = x if equal else _conv(out_planes, 1, stride, f"{name}_shortcut")(act)
    out = _conv(out_planes, 3, stride, f"{name}_conv1")(act)
    out = layers.ReLU(name=f"{name}_relu2")(layers.BatchNormalization(**_BN, name=f"{name}_bn2")(out))
    out = _conv(out_planes, 3, 1, f"{name}_conv2")(out)
    return layers.Add(name=f"{name}_add")([shortcut, out])


@keras.saving.register_keras_serializable(package="nfi_tf")
class WideResNetBackbone(keras.Model):
    """WideResNet-`depth`-`width` feature extractor.

    Args:
        input_shape: (height, width, channels), e.g. (32, 32, 3).
        depth: 6n+4 (34 for WRN-34-10; 16 or 10 for CPU-scale runs).
        width: widening factor k (10 for WRN-34-10).
    """

    def __init__(self, input_shape=(32, 32, 3), depth=34, width=10, **kwargs):
        check_shape(depth, width)
        n = (depth - 4) // 6
        channels = (16, 16 * width, 32 * width, feature_dims(width))
        # === Layers ===
        image = keras.Input(shape=tuple(input_shape), name="image")
        x = _conv(channels[0], 3, 1, "conv1")(image)
        for stage, (planes, stride) in enumerate(zip(channels[1:], (1, 2, 2)), start=1):
            for i in range(n):
                x = _basic_block(x, planes, stride if i == 0 else 1, f"block{stage}_{i}")
        x = layers.ReLU(name="final_relu")(layers.BatchNormalization(**_BN, name="final_bn")(x))
        feature = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # === Functional Model ===
        super().__init__(inputs=image, outputs=feature, **kwargs)
        # === Config ===
        self.image_shape = tuple(input_shape)
        self.depth = depth
        self.width = width
        self.feature_dims = channels[-1]

    def get_config(self):
        return {"input_shape": list(self.image_shape), "depth": self.depth, "width": self.width,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _build(model_config, image_shape) -> WideResNetBackbone:
    return WideResNetBackbone(input_shape=image_shape, depth=model_config.depth,
                              width=model_config.width, name="backbone")


SPEC = registry.BackboneSpec(
    name=NAME, build=_build, feature_dims=lambda model: feature_dims(model.width),
    validate=lambda model: check_shape(model.depth, model.width),
    preset={"depth": 34, "width": 10})  # TRADES' CIFAR-10 model, WRN-34-10
