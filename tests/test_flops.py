"""The analytic FLOP counter against a count by hand from SmallCNN's layer shapes."""

import pytest

from nfi_tf import flops
from nfi_tf.config import make_config
from nfi_tf.models import build_classifier


def _small_cnn_hand_count(heads: int) -> int:
    # Multiply-adds per image, from the shapes: 28x28x1 -> conv3x3 (no padding) -> 26x26x32
    # -> 24x24x32 -> pool 12x12 -> 10x10x64 -> 8x8x64 -> pool 4x4x64 = 1024 -> 200 -> 200 -> heads.
    macs = (
        26 * 26 * 32 * (3 * 3 * 1)  # conv1
        + 24 * 24 * 32 * (3 * 3 * 32)  # conv2
        + 10 * 10 * 64 * (3 * 3 * 32)  # conv3
        + 8 * 8 * 64 * (3 * 3 * 64)  # conv4
        + 1024 * 200  # fc1
        + 200 * 200  # fc2
        + heads * 200 * 10  # dense heads on the 200-d feature
    )
    return 2 * macs


@pytest.mark.parametrize("method,heads", [("trades", 1), ("nfi", 3)])
def test_small_cnn_forward_flops_match_hand_count(method, heads):
    model = build_classifier(make_config("mnist", {"model": {"method": method}}).model, (28, 28, 1), 10)
    assert flops.forward_flops(model) == _small_cnn_hand_count(heads)
    by_layer = flops.forward_flops_by_layer(model)
    assert by_layer["backbone/conv2"] == 2 * 24 * 24 * 32 * 3 * 3 * 32
    assert by_layer["backbone/fc1"] == 2 * 1024 * 200
    assert by_layer["heads"] == 2 * heads * 200 * 10


def test_train_step_formula():
    forward = _small_cnn_hand_count(1)
    # One clean forward, K attack forward + input-backward (2 forwards each), and the loss's
    # forward + backward (3 forwards) on x and on x': F * (2K + 7) per image.
    assert flops.train_step_flops(forward, 40, 128) == 128 * forward * (1 + 2 * 40 + 2 * 3)
    assert flops.train_step_flops(forward, 0, 1) == 7 * forward
    with pytest.raises(ValueError, match="Received"):
        flops.train_step_flops(forward, -1, 128)


def test_wide_resnet_counts_only_conv_and_dense_layers():
    model = build_classifier(make_config("cifar10", {"model": {"depth": 10, "width": 1,
                                                               "robust_dims": 32}}).model,
                             (32, 32, 3), 10)
    by_layer = flops.forward_flops_by_layer(model)
    # The stem: 32x32x3 -> 32x32x16 ("same" padding, stride 1).
    assert by_layer["backbone/conv1"] == 2 * 32 * 32 * 16 * 3 * 3 * 3
    # A strided block's 1x1 shortcut: 16x16 output, 16 -> 32 channels.
    assert by_layer["backbone/block2_0_shortcut"] == 2 * 16 * 16 * 32 * 16
    assert not any("bn" in name or "relu" in name for name in by_layer)
