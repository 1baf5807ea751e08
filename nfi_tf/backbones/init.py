"""PyTorch's initializers in Keras terms, so our backbones start where TRADES' models start."""

import math

import keras


def torch_conv_kaiming():
    """`nn.init.kaiming_normal_` (fan_in, gain sqrt(2), untruncated): TRADES' SmallCNN convs."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def wrn_conv():
    """TRADES' WideResNet: normal(0, sqrt(2 / (k*k*out_channels))), i.e. fan_out."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def torch_dense_kernel():
    """`nn.Linear`'s default, kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def torch_dense_bias(fan_in):
    """`nn.Linear`'s default bias, U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)
