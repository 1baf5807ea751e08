"""Backbones and the classifier: parameter counts, shapes, config and .keras round trips."""

import numpy as np
import pytest

from nfi_tf.config import make_config
from nfi_tf.models import SmallCNNBackbone, WideResNetBackbone, build_classifier


def _n_trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_small_cnn_matches_trades_parameter_count():
    backbone = SmallCNNBackbone(input_shape=(28, 28, 1))
    assert backbone.output_shape == (None, 200)
    # TRADES' SmallCNN with its 10-way fc3 has 312,202 parameters: backbone + one 200x10 head.
    trades = build_classifier(make_config("mnist", {"model": {"method": "trades"}}).model,
                              (28, 28, 1), 10)
    assert _n_trainable(backbone) == 312_202 - 2010
    assert _n_trainable(trades) == 312_202
    nfi = build_classifier(make_config("mnist").model, (28, 28, 1), 10)
    assert _n_trainable(nfi) == 312_202 + 2 * 2010  # two more 200x10 heads


def test_wrn_34_10_matches_known_parameter_count():
    backbone = WideResNetBackbone(input_shape=(32, 32, 3), depth=34, width=10)
    assert backbone.output_shape == (None, 640)
    # WRN-34-10 with a 10-way head: 46,160,474 trainable parameters (TRADES' model without the
    # unused sub_block1).
    assert _n_trainable(backbone) + 640 * 10 + 10 == 46_160_474


def test_wrn_34_10_forward_and_tiny_batch_outputs():
    cfg = make_config("cifar10").model
    model = build_classifier(cfg, (32, 32, 3), 10)
    out = model(np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32), training=False)
    assert out["feature"].shape == (2, 640)
    for name in ("tradeoff", "benign", "adversarial", "routed", "probabilities", "rob", "nr"):
        assert out[name].shape == (2, 10), name
    assert out["route"].shape == (2,)
    np.testing.assert_allclose(np.sum(out["probabilities"], axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("depth,width,dims", [(10, 1, 64), (16, 4, 256)])
def test_small_wide_resnets_feature_size(depth, width, dims):
    backbone = WideResNetBackbone(input_shape=(32, 32, 3), depth=depth, width=width)
    assert backbone.output_shape == (None, dims)
    assert backbone.feature_dims == dims


def test_wide_resnet_rejects_bad_depth():
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNetBackbone(depth=20)


def test_backbone_config_round_trip():
    backbone = WideResNetBackbone(input_shape=(32, 32, 3), depth=10, width=2, name="b")
    clone = WideResNetBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert _n_trainable(clone) == _n_trainable(backbone)


@pytest.mark.parametrize("method", ["nfi", "trades"])
def test_keras_save_load_gives_identical_outputs_and_routes(tmp_path, method):
    import keras

    cfg = make_config("mnist", {"model": {"method": method}}).model
    model = build_classifier(cfg, (28, 28, 1), 10)
    x = np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    a, b = model(x, training=False), loaded(x, training=False)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    if method == "trades":
        assert np.all(np.asarray(a["route"]) == 2)
        np.testing.assert_array_equal(np.asarray(a["routed"]), np.asarray(a["tradeoff"]))
