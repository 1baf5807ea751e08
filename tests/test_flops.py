"""The analytic FLOP counter against a count by hand from SmallCNN's layer shapes, and against
TensorFlow's own per-op count of the traced forward pass and training step (bench/tf_flops.py).

Stated tolerances: the forward pass agrees exactly on the multiply-add ops (the same formula)
and within 1% on everything TensorFlow counts; a WideResNet training step agrees within 2%;
a SmallCNN step does not, by TensorFlow's convention for the gradients of "valid" convolutions,
which `test_tensorflow_counts_only_the_live_ops_of_a_small_cnn_training_step` pins exactly.
"""

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


# === Against TensorFlow's own count (bench/tf_flops.py) ===


@pytest.mark.parametrize("method", ["trades", "nfi"])
def test_tensorflow_counts_the_small_cnn_forward_pass_as_the_analytic_count(method):
    from bench import tf_flops

    model = build_classifier(make_config("mnist", {"model": {"method": method}}).model, (28, 28, 1), 10)
    batch = 3
    traced = tf_flops.forward_concrete_function(model, batch)
    counted = tf_flops.graph_flops(traced)
    # Nothing dead and no nested function in a forward pass: the profiler's own total is ours.
    assert tf_flops.profiler_float_ops(traced) == counted["total"]
    # The multiply-add ops are the same formula on both sides: equal to the FLOP.
    assert counted["multiply_add"] == batch * flops.forward_flops(model)
    assert counted["by_op"]["Conv2D"] == batch * 2 * (26 * 26 * 32 * 9 + 24 * 24 * 32 * 9 * 32
                                                      + 10 * 10 * 64 * 9 * 32 + 8 * 8 * 64 * 9 * 64)
    # TensorFlow also counts bias adds, max pooling and the softmax, which the analytic count
    # leaves out: under 1% of a forward pass here.
    assert 1.0 < counted["total"] / counted["multiply_add"] < 1.01
    assert counted["uncounted"] == {}


def _traced_step(spec):
    from bench import tf_flops
    from bench.train_bench import DEFAULTS, build_step, make_bench_config
    from nfi_tf import data

    spec = {**DEFAULTS, "warmup": 0, "steps": 1, **spec}
    config = make_bench_config(spec)
    info = data.load_info(config.data, download=False)
    step, classifier = build_step(spec, config, info, steps_per_epoch=1)
    counted = tf_flops.graph_flops(tf_flops.step_concrete_function(step, info.image_shape,
                                                                   spec["batch"]))
    return counted, classifier


def test_tensorflow_counts_only_the_live_ops_of_a_small_cnn_training_step():
    batch, k = 2, 2
    counted, model = _traced_step({"dataset": "mnist", "backbone": "small_cnn",
                                   "method": "trades", "batch": batch, "attack_steps": k})
    # SmallCNN's convolutions (input size, channels in, channels out), all 3x3 "valid".
    convs = [(28, 1, 32), (26, 32, 32), (12, 32, 64), (10, 64, 64)]
    forward = sum(2 * (h - 2) ** 2 * 9 * cin * cout for h, cin, cout in convs)
    # TensorFlow counts a convolution's gradients over the input's positions (h, not h - 2).
    backward = [2 * h**2 * 9 * cin * cout for h, cin, cout in convs]
    by_op = counted["by_op"]
    # Forward: the attack's clean pass, K attack passes, the loss on x and on x'.
    assert by_op["Conv2D"] == batch * (k + 3) * forward
    # The weight gradients only for the loss's two passes: the attack's are dead (pruned).
    assert by_op["Conv2DBackpropFilter"] == batch * 2 * sum(backward)
    # Input gradients: all K attack passes reach the image; the loss's stop at conv1's output.
    assert by_op["Conv2DBackpropInput"] == batch * (k * sum(backward) + 2 * sum(backward[1:]))
    assert counted["uncounted"] == {}
    # Hence the stated disagreement with the analytic B * F * (2K + 7) on "valid" convolutions.
    analytic = flops.train_step_flops(flops.forward_flops(model), k, batch)
    assert 1.1 < counted["multiply_add"] / analytic < 1.2


def test_tensorflow_and_the_analytic_count_agree_on_a_wide_resnet_training_step():
    # "same" padding: TensorFlow's gradient convention and the analytic count coincide up to the
    # gradients nobody needs (the stem's input gradient in the loss, the unused heads).
    batch, k = 2, 2
    counted, model = _traced_step({"dataset": "cifar10", "backbone": "wide_resnet", "depth": 10,
                                   "width": 1, "method": "nfi", "batch": batch, "attack_steps": k})
    analytic = flops.train_step_flops(flops.forward_flops(model), k, batch)
    assert counted["multiply_add"] / analytic == pytest.approx(1.0, abs=0.02)


def test_onednn_verbose_lines_are_counted_by_algorithm():
    from bench.flops_suite import parse_onednn_verbose

    lines = [
        "onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,"
        "src:f32::blocked:acdb::f0,attr-post-ops:eltwise_relu,alg:convolution_direct,mb2_ic1oc32,0.1",
        "onednn_verbose,exec,cpu,convolution,jit_wino:avx512_core,backward_data,src:f32,,"
        "alg:convolution_winograd,mb2_ic32oc32,0.2",
        "onednn_verbose,v1,primitive,exec,cpu,pooling,jit:avx512_core,forward_training,src,,"
        "alg:pooling_max,mb2,0.07",
        "some other line",
    ]
    parsed = parse_onednn_verbose(lines)
    assert parsed["convolutions"] == 2
    assert parsed["algorithms"] == {"convolution_direct": 1, "convolution_winograd": 1}
    assert parsed["implementations"] == {"forward_training: brg_conv_fwd:avx512_core": 1,
                                         "backward_data: jit_wino:avx512_core": 1}
    assert parsed["winograd_seen"] and not parsed["fft_seen"]
    assert not parse_onednn_verbose(lines[:1] + lines[3:])["winograd_seen"]


def test_onednn_rule_follows_the_setting_then_the_cpu_flags():
    from bench.machine import onednn_ops_expected

    amd, xeon = {"avx", "avx2", "fma"}, {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}
    assert onednn_ops_expected({}, amd)[0] is False
    on, reason = onednn_ops_expected({}, xeon)
    assert on is True and "avx512_vnni" in reason
    assert onednn_ops_expected({"TF_ENABLE_ONEDNN_OPTS": "1"}, amd) == (True, "TF_ENABLE_ONEDNN_OPTS=1")
    assert onednn_ops_expected({"TF_ENABLE_ONEDNN_OPTS": "false"}, xeon)[0] is False
    assert onednn_ops_expected({"TF_ENABLE_ONEDNN_OPTS": "True"}, amd)[0] is True
