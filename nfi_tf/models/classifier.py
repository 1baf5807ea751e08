"""The full classifier: [preprocessing] -> backbone -> [pooling] -> triple head -> routing, one
Keras functional model.

Its outputs are a dict whose names become the SavedModel and ONNX output names:
`routed`, `route`, `probabilities` (softmax of `routed`), each head's logits, the part scores
`rob`/`nr`, the masked-feature logits `robust_part`/`nonrobust_part`, and `feature`.

Two ways to build it (`build_classifier`):
- from a `ModelConfig` (what `python -m nfi_tf.train` does): the backbone its `backbone` names in
  the registry (`nfi_tf/backbones/`: `small_cnn`, `wide_resnet`, `keras.applications.NAME`
  (include_top=False, weights None or a local file, never downloaded), or one you registered);
- around your own backbone: `build_classifier(backbone=model, num_classes=10)`, where `model`
  maps images to a feature vector (B, D) or a feature map (B, H, W, D), globally average-pooled.
  D is read off the model; the input is [0, 1] pixels, mapped to what the backbone expects by
  `preprocessing` (a mode of `nfi_tf.backbones.PREPROCESSING` or a keras.applications name).
"""

from __future__ import annotations

import keras
from keras import layers

from nfi_tf import backbones
from nfi_tf import outputs as names
from nfi_tf.config import ModelConfig, trainable_method
from nfi_tf.errors import NfiError
from nfi_tf.models.channel_affine import ChannelAffine
from nfi_tf.models.heads import RoutingLayer, TripleHead
from nfi_tf.vocab import Method

PREPROCESSING_LAYER, POOLING_LAYER = "preprocessing", "pooling"


def build_backbone(cfg: ModelConfig, image_shape) -> keras.Model:
    """The feature extractor `cfg.backbone` names, as its registry entry builds it."""
    return backbones.get(cfg.backbone).build(cfg, tuple(image_shape))


def build_classifier(cfg: ModelConfig | None = None, image_shape=None, num_classes=None, *,
                     backbone: keras.Model | None = None, robust_dims: int | None = None,
                     method: str = Method.NFI, preprocessing: str | None = None) -> keras.Model:
    """The nfi (three heads + routing) or trades (one head) classifier.

    Either `build_classifier(cfg, image_shape, num_classes)` from a ModelConfig, or
    `build_classifier(backbone=model, num_classes=C, robust_dims=d, method="nfi")` around your
    own backbone (image shape from its input unless given; d defaults to 128 if 128 < D else
    D // 2; `preprocessing` maps the model's [0, 1] input to the backbone's, default none).
    """
    if backbone is None:
        if cfg is None or image_shape is None or num_classes is None:
            raise TypeError("build_classifier needs (cfg, image_shape, num_classes), or "
                            "backbone=<keras.Model> and num_classes=")
        return _assemble(build_backbone(cfg, image_shape), image_shape, num_classes,
                         cfg.robust_dims, cfg.method, backbones.preprocessing_for(cfg.backbone))
    if cfg is not None:
        raise TypeError("build_classifier takes a ModelConfig or a backbone, not both")
    if num_classes is None:
        raise TypeError("build_classifier(backbone=...) needs num_classes=")
    if not isinstance(backbone, keras.Model):
        raise NfiError(f"backbone must be a keras.Model mapping images to a feature vector or map. "
                       f"Received: {type(backbone).__name__}")
    if image_shape is None:
        image_shape = tuple(backbone.input_shape[1:])
        if None in image_shape:
            raise NfiError(f"the backbone's input shape is not fully defined: pass image_shape=. "
                           f"Received: input_shape={backbone.input_shape}")
    mode = preprocessing or backbones.NO_PREPROCESSING
    if mode not in backbones.PREPROCESSING:
        mode = backbones.preprocessing_for(mode if backbones.is_application(mode)
                                           else backbones.APPLICATION_PREFIX + mode)
    return _assemble(backbone, image_shape, num_classes, robust_dims, method, mode)


def _assemble(backbone: keras.Model, image_shape, num_classes, robust_dims, method, mode):
    method = trainable_method(method)
    image = keras.Input(shape=tuple(image_shape), name="image")
    x = image
    if mode != backbones.NO_PREPROCESSING:
        x = ChannelAffine.for_mode(mode, int(image_shape[-1]), name=PREPROCESSING_LAYER)(x)
    feature = backbone(x)
    if isinstance(feature, (dict, list, tuple)):
        raise NfiError(f"the backbone must return one tensor (a feature vector or map). "
                       f"Received: {type(feature).__name__}")
    rank = len(feature.shape)
    if rank in (3, 4):  # a map (B, H, W, D) or tokens (B, N, D): global average pooling
        pool = layers.GlobalAveragePooling2D if rank == 4 else layers.GlobalAveragePooling1D
        feature = pool(name=POOLING_LAYER)(feature)
    elif rank != 2:
        raise NfiError(f"the backbone must return (batch, D), (batch, H, W, D) or (batch, N, D). "
                       f"Received: shape={tuple(feature.shape)}")
    dims = feature.shape[-1]
    if dims is None:
        raise NfiError("the backbone's feature size D (its last axis) must be known")
    if robust_dims is None:
        robust_dims = backbones.default_robust_dims(int(dims))
    single = method == Method.TRADES
    # Heads and routing stay float32 under mixed precision: softmax/KL and argmax comparisons
    # are where half precision hurts.
    heads = TripleHead(num_classes, robust_dims, heads=names.heads_for(method),
                       dtype="float32", name=names.HEADS_LAYER)(feature)
    routed, route = RoutingLayer(single_head=single, dtype="float32", name=names.ROUTING_LAYER)(heads)
    outputs = dict(heads)
    outputs[names.ROUTED] = routed
    outputs[names.ROUTE] = route
    outputs[names.PROBABILITIES] = layers.Softmax(dtype="float32", name=names.PROBABILITIES)(routed)
    outputs[names.FEATURE] = layers.Activation("linear", dtype="float32", name=names.FEATURE)(feature)
    return keras.Model(inputs=image, outputs=outputs, name=f"nfi_tf_{method}")


def feature_dims(classifier: keras.Model) -> int:
    """D of a built classifier (the size of its `feature` output)."""
    return int(classifier.output[names.FEATURE].shape[-1])
