"""The triple head's part scores and the routing rule (docs/method.md §3)."""

import numpy as np
import pytest
import tensorflow as tf

from nfi_tf.config import make_config
from nfi_tf.errors import NfiError
from nfi_tf.models.heads import RoutingLayer, TripleHead, routes


def _route(tradeoff, rob, nr):
    return routes(tf.constant([tradeoff], tf.float32), tf.constant([rob], tf.float32),
                  tf.constant([nr], tf.float32)).numpy()[0]


def test_routing_rule_every_branch():
    # all three agree (class 1) -> benign head
    assert _route([0, 3, 1], [0, 2, 1], [0, 5, 1]) == 0
    # y == y_rob only -> adversarial head
    assert _route([0, 3, 1], [0, 2, 1], [4, 0, 1]) == 1
    # y == y_nr only -> trade-off head
    assert _route([0, 3, 1], [4, 0, 1], [0, 2, 1]) == 2
    # all differ -> trade-off head
    assert _route([0, 3, 1], [4, 0, 1], [0, 0, 7]) == 2


def test_routing_ties_resolve_to_lowest_index():
    # tradeoff ties between 0 and 2 -> y = 0; rob argmax 0; nr ties 0/1 -> 0: all agree.
    assert _route([5, 1, 5], [2, 1, 0], [3, 3, 0]) == 0
    # rob ties 1/2 -> 1 != y = 2 -> not adversarial; nr says 2 -> trade-off route.
    assert _route([0, 1, 4], [0, 6, 6], [0, 0, 9]) == 2
    # all-equal logits: every argmax is 0, so benign.
    assert _route([1, 1, 1], [0, 0, 0], [2, 2, 2]) == 0


def test_routing_layer_selects_the_routed_head():
    heads = {
        "tradeoff": tf.constant([[0, 3, 1], [0, 3, 1], [0, 3, 1]], tf.float32),
        "rob": tf.constant([[0, 2, 1], [0, 2, 1], [4, 0, 1]], tf.float32),
        "nr": tf.constant([[0, 5, 1], [4, 0, 1], [0, 2, 1]], tf.float32),
        "benign": tf.fill([3, 3], 10.0),
        "adversarial": tf.fill([3, 3], 20.0),
    }
    routed, route = RoutingLayer()(heads)
    np.testing.assert_array_equal(route.numpy(), [0, 1, 2])
    np.testing.assert_array_equal(routed.numpy()[:, 0], [10.0, 20.0, 0.0])
    np.testing.assert_array_equal(routed.numpy()[2], [0, 3, 1])


def test_part_scores_sum_to_tradeoff_logits():
    layer = TripleHead(10, robust_dims=128)
    feature = tf.random.stateless_normal([32, 200], seed=[1, 2])
    out = layer(feature)
    w, b = layer.tradeoff_kernel.numpy(), layer.tradeoff_bias.numpy()
    f = feature.numpy()
    np.testing.assert_allclose(out["rob"], f[:, :128] @ w[:128], atol=1e-5)
    np.testing.assert_allclose(out["nr"], f[:, 128:] @ w[128:], atol=1e-5)
    np.testing.assert_allclose(out["rob"] + out["nr"] + b, out["tradeoff"], atol=1e-5)
    np.testing.assert_allclose(out["tradeoff"], f @ w + b, atol=1e-5)
    # Table 1's "part alone": the trade-off head on the masked feature.
    mask = np.zeros(200, np.float32)
    mask[:128] = 1
    np.testing.assert_allclose(out["robust_part"], (f * mask) @ w + b, atol=1e-5)
    np.testing.assert_allclose(out["nonrobust_part"], (f * (1 - mask)) @ w + b, atol=1e-5)


def test_robust_dims_must_be_smaller_than_feature_size():
    with pytest.raises(NfiError, match="robust_dims must be in \\[1, 199\\].*robust_dims=200"):
        make_config("mnist", {"model": {"robust_dims": 200}})
    with pytest.raises(NfiError, match="robust_dims=640"):
        make_config("cifar10", {"model": {"robust_dims": 640}})
    with pytest.raises(ValueError, match="robust_dims"):
        TripleHead(10, robust_dims=8)(tf.zeros([1, 8]))


def test_triple_head_config_round_trip():
    layer = TripleHead(7, robust_dims=3, heads=("tradeoff",), name="h")
    clone = TripleHead.from_config(layer.get_config())
    assert (clone.num_classes, clone.robust_dims, clone.heads) == (7, 3, ("tradeoff",))
