"""The classifier: a backbone (`nfi_tf/backbones/`, re-exported here) under the triple head and
routing."""

from nfi_tf.backbones import SmallCNNBackbone, WideResNetBackbone
from nfi_tf.models.channel_affine import ChannelAffine
from nfi_tf.models.classifier import build_classifier
from nfi_tf.models.heads import RoutingLayer, TripleHead

__all__ = [
    "ChannelAffine",
    "RoutingLayer",
    "SmallCNNBackbone",
    "TripleHead",
    "WideResNetBackbone",
    "build_classifier",
]
