"""The backbone registry: each backbone's name and the size D of its feature vector f(x).

Plain Python (no Keras), so config validation and the Keras backbones
(`nfi_tf/models/small_cnn.py`, `nfi_tf/models/wide_resnet.py`) read the same numbers.
"""

from __future__ import annotations

SMALL_CNN, WIDE_RESNET = "small_cnn", "wide_resnet"
BACKBONES = (SMALL_CNN, WIDE_RESNET)

SMALL_CNN_FEATURE_DIMS = 200  # TRADES' SmallCNN: the input of its last dense layer
DEFAULT_ROBUST_DIMS = 128


def wide_resnet_feature_dims(width: int) -> int:
    """WideResNet-depth-k: the last stage has 64k channels, globally average-pooled."""
    return 64 * width


def feature_dims(model_config) -> int:
    """D for a ModelConfig (anything with `backbone` and `width`)."""
    if model_config.backbone == SMALL_CNN:
        return SMALL_CNN_FEATURE_DIMS
    if model_config.backbone == WIDE_RESNET:
        return wide_resnet_feature_dims(model_config.width)
    raise ValueError(f"backbone must be one of {BACKBONES}. Received: backbone={model_config.backbone!r}")


def default_robust_dims(dims: int) -> int:
    """d when not given: 128 if 128 < D, else D // 2 (so every backbone has a valid default)."""
    return DEFAULT_ROBUST_DIMS if DEFAULT_ROBUST_DIMS < dims else dims // 2
