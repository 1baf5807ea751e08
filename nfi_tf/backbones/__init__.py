"""Backbones (feature extractors), one module each, registered once (registry.py).

    small_cnn.py     TRADES' SmallCNN (MNIST), D = 200
    wide_resnet.py   TRADES' WideResNet-depth-width (CIFAR-10: 34-10), D = 64 * width
    applications.py  keras.applications.NAME (the 40 of them), D and preprocessing from a table
    custom.py        a backbone given from Python (nfi_tf.build_classifier(backbone=...))

Adding a backbone: a module with its network and a `registry.BackboneSpec`, one `register` line
(below, or in your own code), and its test (tests/test_extension_point_backbone.py adds a toy one).
Config validation, `build_classifier`, the trainer and the presets ask the registry; the names
below are what they and older code read.
"""

from nfi_tf.backbones import applications, custom, registry, small_cnn, wide_resnet
from nfi_tf.backbones.applications import (
    APPLICATIONS,
    SUGGESTED_APPLICATIONS,
    Application,
    application,
    application_name,
    is_application,
)
from nfi_tf.backbones.preprocessing import (
    CAFFE,
    NO_PREPROCESSING,
    PIXELS_255,
    PREPROCESSING,
    TF,
    TORCH,
    preprocessing_affine,
)
from nfi_tf.backbones.registry import (
    DEFAULT_ROBUST_DIMS,
    BackboneSpec,
    default_robust_dims,
    get,
    known_feature_dims,
    lookup,
    preset,
    register,
    registered,
    specs,
    unregister,
)
from nfi_tf.backbones.small_cnn import SmallCNNBackbone
from nfi_tf.backbones.wide_resnet import WideResNetBackbone
from nfi_tf.errors import NfiError

for _module in (small_cnn, wide_resnet, applications, custom):
    registry.register(_module.SPEC)

SMALL_CNN, WIDE_RESNET, CUSTOM = small_cnn.NAME, wide_resnet.NAME, custom.NAME
BACKBONES = (SMALL_CNN, WIDE_RESNET)  # the project's own (--backbone's help names them first)
APPLICATION_PREFIX = applications.PREFIX
SMALL_CNN_FEATURE_DIMS = small_cnn.FEATURE_DIMS
wide_resnet_feature_dims = wide_resnet.feature_dims


def feature_dims(model_config) -> int:
    """D for a ModelConfig (anything with `backbone`, `width`, ...); a one-line NfiError when it
    is not known before building (custom, an unknown name)."""
    spec = get(model_config.backbone)
    if spec.feature_dims is None:
        raise NfiError(f"the {spec.name} backbone's feature size D is known only once it is built. "
                       f"Received: backbone={model_config.backbone!r}")
    return spec.feature_dims(model_config)


def is_known(backbone: str) -> bool:
    """A backbone whose D is known from the config (any registered one but custom; a
    keras.applications name the table has)."""
    spec = lookup(backbone)
    if spec is None or spec.feature_dims is None:
        return False
    return not is_application(backbone) or backbone[len(APPLICATION_PREFIX):] in APPLICATIONS


def preprocessing_for(backbone: str) -> str:
    """The preprocessing mode of a backbone value: its spec's (an application's own), else none."""
    spec = lookup(backbone)
    return spec.preprocessing(backbone) if spec is not None else NO_PREPROCESSING


__all__ = [
    "APPLICATIONS", "APPLICATION_PREFIX", "BACKBONES", "CAFFE", "CUSTOM", "DEFAULT_ROBUST_DIMS",
    "NO_PREPROCESSING", "PIXELS_255", "PREPROCESSING", "SMALL_CNN", "SMALL_CNN_FEATURE_DIMS",
    "SUGGESTED_APPLICATIONS", "TF", "TORCH", "WIDE_RESNET", "Application", "BackboneSpec",
    "SmallCNNBackbone", "WideResNetBackbone", "application", "application_name",
    "default_robust_dims", "feature_dims", "get", "is_application", "is_known",
    "known_feature_dims", "lookup", "preprocessing_affine", "preprocessing_for", "preset", "register",
    "registered", "specs", "unregister", "wide_resnet_feature_dims",
]
