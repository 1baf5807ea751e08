"""Backbones (feature extractors) and the classifier built on them."""

from nfi_tf.models.channel_affine import ChannelAffine
from nfi_tf.models.classifier import build_classifier
from nfi_tf.models.heads import RoutingLayer, TripleHead
from nfi_tf.models.small_cnn import SmallCNNBackbone
from nfi_tf.models.wide_resnet import WideResNetBackbone

__all__ = [
    "ChannelAffine",
    "RoutingLayer",
    "SmallCNNBackbone",
    "TripleHead",
    "WideResNetBackbone",
    "build_classifier",
]
