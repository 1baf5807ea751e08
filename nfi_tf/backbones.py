"""The backbone registry: each backbone's name, the size D of its feature vector f(x) and, for
`keras.applications` models, the input preprocessing the model expects.

Plain Python (no Keras), so config validation and the Keras backbones
(`nfi_tf/models/small_cnn.py`, `nfi_tf/models/wide_resnet.py`, `nfi_tf/models/classifier.py`)
read the same numbers.

`keras.applications.NAME` backbones are built with `include_top=False` and globally
average-pooled; the nfi model takes [0, 1] images and applies the application's own
`preprocess_input` as a `ChannelAffine` layer inside the graph (so it reaches SavedModel and
ONNX). `CUSTOM` names a backbone given from Python (`nfi_tf.build_classifier(backbone=...)`):
its D is read off the model, so config.json records `robust_dims` as the number it was built with.
"""

from __future__ import annotations

import dataclasses

SMALL_CNN, WIDE_RESNET = "small_cnn", "wide_resnet"
BACKBONES = (SMALL_CNN, WIDE_RESNET)
CUSTOM = "custom"
APPLICATION_PREFIX = "keras.applications."

# `keras.applications.<module>.preprocess_input` on [0, 255] pixels, in [0, 1] pixel terms:
#   tf          x * 2 - 1                                  (MobileNet, ResNetV2, Inception, ...)
#   caffe       RGB -> BGR, x * 255 - ImageNet mean (BGR)  (ResNet, VGG)
#   torch       (x - ImageNet mean) / ImageNet std         (DenseNet)
#   pixels_255  x * 255: the model normalizes inside itself (EfficientNet, ConvNeXt, MobileNetV3)
#   none        x as given: [0, 1] pixels (our own backbones, and a custom one by default)
TF, CAFFE, TORCH, PIXELS_255, NO_PREPROCESSING = "tf", "caffe", "torch", "pixels_255", "none"
PREPROCESSING = (TF, CAFFE, TORCH, PIXELS_255, NO_PREPROCESSING)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Application:
    """A keras.applications model as a backbone (include_top=False, default arguments)."""

    module: str  # keras.applications.<module>: where its preprocess_input lives
    preprocessing: str  # one of PREPROCESSING
    feature_dims: int  # channels of its last feature map = D after global average pooling
    min_size: int  # the smallest image side it builds on with weights=None


def _apps(module, preprocessing, min_size=32, **dims):
    return {name: Application(module, preprocessing, d, min_size) for name, d in dims.items()}


# Measured with Keras 3.15 (weights=None, include_top=False, smallest input it accepts);
# tests/test_own_backbone.py checks a few against keras.applications itself.
APPLICATIONS: dict[str, Application] = {
    **_apps("convnext", PIXELS_255, ConvNeXtTiny=768, ConvNeXtSmall=768, ConvNeXtBase=1024,
            ConvNeXtLarge=1536, ConvNeXtXLarge=2048),
    **_apps("densenet", TORCH, DenseNet121=1024, DenseNet169=1664, DenseNet201=1920),
    **_apps("efficientnet", PIXELS_255, EfficientNetB0=1280, EfficientNetB1=1280,
            EfficientNetB2=1408, EfficientNetB3=1536, EfficientNetB4=1792, EfficientNetB5=2048,
            EfficientNetB6=2304, EfficientNetB7=2560),
    **_apps("efficientnet_v2", PIXELS_255, EfficientNetV2B0=1280, EfficientNetV2B1=1280,
            EfficientNetV2B2=1408, EfficientNetV2B3=1536, EfficientNetV2S=1280,
            EfficientNetV2M=1280, EfficientNetV2L=1280),
    **_apps("inception_resnet_v2", TF, 75, InceptionResNetV2=1536),
    **_apps("inception_v3", TF, 75, InceptionV3=2048),
    **_apps("mobilenet", TF, MobileNet=1024),
    **_apps("mobilenet_v2", TF, MobileNetV2=1280),
    **_apps("mobilenet_v3", PIXELS_255, MobileNetV3Small=576, MobileNetV3Large=960),
    **_apps("nasnet", TF, NASNetMobile=1056, NASNetLarge=4032),
    **_apps("resnet", CAFFE, ResNet50=2048, ResNet101=2048, ResNet152=2048),
    **_apps("resnet_v2", TF, ResNet50V2=2048, ResNet101V2=2048, ResNet152V2=2048),
    **_apps("vgg16", CAFFE, VGG16=512),
    **_apps("vgg19", CAFFE, VGG19=512),
    **_apps("xception", TF, 71, Xception=2048),
}
# Named in errors: the small ones first, the way a CPU user would pick.
SUGGESTED_APPLICATIONS = ("MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "ResNet50V2",
                          "DenseNet121")


def is_application(backbone: str) -> bool:
    """`keras.applications.NAME` (known or not: `application` says which it is)."""
    return isinstance(backbone, str) and backbone.startswith(APPLICATION_PREFIX)


def application(backbone: str) -> Application:
    """The registry entry of `keras.applications.NAME`; a one-line ValueError for another name."""
    name = backbone[len(APPLICATION_PREFIX):] if is_application(backbone) else backbone
    if name not in APPLICATIONS:
        listed = ", ".join(APPLICATION_PREFIX + n for n in SUGGESTED_APPLICATIONS)
        raise ValueError(f"unknown keras.applications model {name!r}: use one of {listed}, ... "
                         f"({len(APPLICATIONS)} in all). Received: backbone={backbone!r}")
    return APPLICATIONS[name]


def application_name(backbone: str) -> str:
    """`keras.applications.MobileNetV2` -> `MobileNetV2` (checked against the registry)."""
    application(backbone)
    return backbone[len(APPLICATION_PREFIX):] if is_application(backbone) else backbone


def is_known(backbone: str) -> bool:
    """A backbone whose D is known from its name (ours, or a registered application)."""
    return backbone in BACKBONES or (is_application(backbone)
                                     and backbone[len(APPLICATION_PREFIX):] in APPLICATIONS)


def preprocessing_for(backbone: str) -> str:
    """The preprocessing mode of a backbone name: an application's own, else none."""
    return application(backbone).preprocessing if is_application(backbone) else NO_PREPROCESSING


def preprocessing_affine(mode: str, channels: int):
    """(channel order or None, per-channel scale, per-channel offset) mapping [0, 1] pixels x to
    `x[..., order] * scale + offset`, the input `mode` asks for."""
    if mode not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING} or a keras.applications "
                         f"name. Received: preprocessing={mode!r}")
    if mode in (CAFFE, TORCH) and channels != 3:
        raise ValueError(f"{mode} preprocessing normalizes RGB images (3 channels). "
                         f"Received: {channels} channel(s)")
    if mode == CAFFE:
        return (2, 1, 0), (255.0,) * 3, tuple(-m for m in _CAFFE_MEAN_BGR)
    if mode == TORCH:
        return None, tuple(1 / s for s in _TORCH_STD), tuple(-m / s for m, s in
                                                             zip(_TORCH_MEAN, _TORCH_STD))
    scale, offset = {TF: (2.0, -1.0), PIXELS_255: (255.0, 0.0), NO_PREPROCESSING: (1.0, 0.0)}[mode]
    return None, (scale,) * channels, (offset,) * channels

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
    if is_application(model_config.backbone):
        return application(model_config.backbone).feature_dims
    raise ValueError(f"backbone must be one of {BACKBONES} or {APPLICATION_PREFIX}NAME. "
                     f"Received: backbone={model_config.backbone!r}")


def default_robust_dims(dims: int) -> int:
    """d when not given: 128 if 128 < D, else D // 2 (so every backbone has a valid default)."""
    return DEFAULT_ROBUST_DIMS if DEFAULT_ROBUST_DIMS < dims else dims // 2
