"""The full classifier: backbone -> triple head -> routing, one Keras functional model.

Its outputs are a dict whose names become the SavedModel and ONNX output names:
`routed`, `route`, `probabilities` (softmax of `routed`), each head's logits, the part scores
`rob`/`nr`, the masked-feature logits `robust_part`/`nonrobust_part`, and `feature`.
"""

import keras
from keras import layers

from nfi_tf import outputs as names
from nfi_tf.config import ModelConfig
from nfi_tf.models.heads import RoutingLayer, TripleHead
from nfi_tf.models.small_cnn import SmallCNNBackbone
from nfi_tf.models.wide_resnet import WideResNetBackbone


def build_backbone(cfg: ModelConfig, image_shape) -> keras.Model:
    if cfg.backbone == "small_cnn":
        return SmallCNNBackbone(input_shape=image_shape, dropout=cfg.dropout, name="backbone")
    if cfg.backbone == "wide_resnet":
        return WideResNetBackbone(input_shape=image_shape, depth=cfg.depth, width=cfg.width,
                                  name="backbone")
    raise ValueError(f"unknown backbone. Received: backbone={cfg.backbone!r}")


def build_classifier(cfg: ModelConfig, image_shape, num_classes) -> keras.Model:
    """The nfi (three heads + routing) or trades (one head) classifier on `image_shape` inputs."""
    image = keras.Input(shape=tuple(image_shape), name="image")
    backbone = build_backbone(cfg, image_shape)
    feature = backbone(image)
    single = cfg.method == "trades"
    # Heads and routing stay float32 under mixed precision: softmax/KL and argmax comparisons
    # are where half precision hurts.
    heads = TripleHead(num_classes, cfg.robust_dims, heads=names.heads_for(cfg.method),
                       dtype="float32", name=names.HEADS_LAYER)(feature)
    routed, route = RoutingLayer(single_head=single, dtype="float32", name=names.ROUTING_LAYER)(heads)
    outputs = dict(heads)
    outputs[names.ROUTED] = routed
    outputs[names.ROUTE] = route
    outputs[names.PROBABILITIES] = layers.Softmax(dtype="float32", name=names.PROBABILITIES)(routed)
    outputs[names.FEATURE] = layers.Activation("linear", dtype="float32", name=names.FEATURE)(feature)
    return keras.Model(inputs=image, outputs=outputs, name=f"nfi_tf_{cfg.method}")
