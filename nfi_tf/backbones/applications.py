"""`keras.applications.NAME` as backbones: the registry's one family (`--backbone=
keras.applications.MobileNetV2`, any of the 40), with each application's feature size and input
preprocessing.

Each is built with `include_top=False` (globally average-pooled by the classifier), weights None
(random initialization) or a local include_top=False weights file (`--backbone_weights`): nothing
is downloaded. The nfi model takes [0, 1] images and applies the application's own
`preprocess_input` as a `ChannelAffine` layer inside the graph (so it reaches SavedModel and ONNX).
"""

from __future__ import annotations

import dataclasses
import os

import keras

from nfi_tf.backbones import registry
from nfi_tf.backbones.preprocessing import CAFFE, PIXELS_255, TF, TORCH
from nfi_tf.errors import NfiError, check

PREFIX = "keras.applications."


@dataclasses.dataclass(frozen=True)
class Application:
    """A keras.applications model as a backbone (include_top=False, default arguments)."""

    module: str  # keras.applications.<module>: where its preprocess_input lives
    preprocessing: str  # one of nfi_tf.backbones.preprocessing.PREPROCESSING
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
    return isinstance(backbone, str) and backbone.startswith(PREFIX)


def application_name(backbone: str) -> str:
    """`keras.applications.MobileNetV2` -> `MobileNetV2` (checked against the table)."""
    name = backbone[len(PREFIX):] if is_application(backbone) else backbone
    if name not in APPLICATIONS:
        listed = ", ".join(PREFIX + n for n in SUGGESTED_APPLICATIONS)
        raise NfiError(f"unknown keras.applications model {name!r}: use one of {listed}, ... "
                       f"({len(APPLICATIONS)} in all). Received: backbone={backbone!r}")
    return name


def application(backbone: str) -> Application:
    """The table entry of `keras.applications.NAME` (or NAME); a one-line NfiError for another."""
    return APPLICATIONS[application_name(backbone)]


def _validate(model_config) -> None:
    application(model_config.backbone)
    check(model_config.backbone_weights != "imagenet",
          "backbone_weights must be a local weights file: nothing is downloaded (get the "
          "include_top=False file elsewhere and give its path). Received: backbone_weights='imagenet'")


def build(backbone: str, image_shape, weights: str | None = None):
    """`keras.applications.NAME(include_top=False)` on `image_shape` images; `weights` None
    (random init) or a local weights file. Nothing is downloaded."""
    app, name = application(backbone), application_name(backbone)
    if weights is not None and not os.path.isfile(weights):
        raise NfiError(f"backbone_weights must be a local weights file ({name}'s include_top=False "
                       f"weights); nothing is downloaded. Received: backbone_weights={weights!r}")
    try:
        return getattr(keras.applications, name)(include_top=False, weights=weights,
                                                 input_shape=tuple(image_shape))
    except ValueError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NfiError(f"{backbone} cannot be built on {tuple(image_shape)} images (it needs at "
                       f"least {app.min_size}x{app.min_size}): {first}") from e


SPEC = registry.BackboneSpec(
    name=PREFIX, family=True, usage=f"{PREFIX}NAME (e.g. {PREFIX}MobileNetV2)", weights=True,
    build=lambda model, image_shape: build(model.backbone, image_shape, model.backbone_weights),
    feature_dims=lambda model: application(model.backbone).feature_dims,
    validate=_validate, preprocessing=lambda backbone: application(backbone).preprocessing)
