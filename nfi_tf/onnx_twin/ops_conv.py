"""Conv (2-D, groups, dilations, pads, auto_pad, strides) and ConvTranspose (2-D, group 1,
dilations, pads, output_padding).

Grouped convolutions run as one depthwise convolution (group == input channels) or as one
convolution per group, and dilations as a filter spread with zeros: TensorFlow's own grouped
and dilated Conv2D have no gradient on the CPU without oneDNN (e.g. in float64).
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.onnx_twin import spatial
from nfi_tf.onnx_twin.registry import register
from nfi_tf.onnx_twin.values import optional, rank_of, shape_of


def _depthwise(x, filters, strides):
    if strides[0] == strides[1]:
        return tf.nn.depthwise_conv2d(x, filters, [1, *strides, 1], "VALID")
    # TF's depthwise kernel takes only equal strides: stride 1, then keep every stride-th pixel
    return tf.nn.depthwise_conv2d(x, filters, [1, 1, 1, 1], "VALID")[:, ::strides[0], ::strides[1], :]


def _conv(x, w, wins, node):
    """NHWC x, ONNX weight w [M, C/group, kH, kW] -> NHWC output, VALID (x is padded)."""
    group = int(node.attr("group", 1))
    strides = [win.stride for win in wins]
    dilations = [win.dilation for win in wins]
    channels, (m, per_group, kh, kw) = shape_of(x)[3], shape_of(w)
    if group == channels and per_group == 1 and group > 1:
        filters = tf.transpose(tf.reshape(w, (group, m // group, kh, kw)), (2, 3, 0, 1))
        return _depthwise(x, spatial.dilate_filter(filters, dilations), strides)
    filters = spatial.dilate_filter(tf.transpose(w, (2, 3, 1, 0)), dilations)
    if group == 1:
        return tf.nn.conv2d(x, filters, strides, "VALID")
    return tf.concat([tf.nn.conv2d(a, b, strides, "VALID")
                      for a, b in zip(tf.split(x, group, axis=3), tf.split(filters, group, axis=3))], axis=3)


def _bias(y, b):
    return y if b is None else y + tf.reshape(tf.cast(b, y.dtype), (1, -1, 1, 1))


@register("Conv")
def conv(inputs, node):
    x, w, b = inputs[0], inputs[1], optional(inputs, 2)
    if rank_of(x) != 4:
        raise node.unsupported(f"{rank_of(x) - 2} spatial dimensions (2 are supported)")
    wins = spatial.windows(node, shape_of(x)[2:], tuple(shape_of(w)[2:]))
    y = _conv(spatial.pad_nhwc(spatial.nhwc(x), wins), w, wins, node)
    return _bias(spatial.nchw(y), b)


def _transpose_geometry(node, sizes, kernel):
    strides = tuple(node.attr("strides", (1, 1)))
    dilations = tuple(node.attr("dilations", (1, 1)))
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    extra = tuple(node.attr("output_padding", (0, 0)))
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise node.unsupported(f"auto_pad={node.attr('auto_pad')}")
    if node.attr("output_shape") is not None:
        raise node.unsupported("output_shape (give pads instead)")
    full = [(sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 for i in range(2)]
    return strides, dilations, pads, extra, full


@register("ConvTranspose")
def conv_transpose(inputs, node):
    """The full transposed convolution, then output_padding's zero rows, then pads cropped."""
    x, w, b = inputs[0], inputs[1], optional(inputs, 2)
    if rank_of(x) != 4 or int(node.attr("group", 1)) != 1:
        raise node.unsupported("other than 2 spatial dimensions and group=1")
    sizes = shape_of(x)[2:]
    if None in sizes:
        raise node.unsupported("a spatial size known only at run time")
    strides, dilations, pads, extra, full = _transpose_geometry(node, sizes, shape_of(w)[2:])
    xt = spatial.nhwc(x)
    out_shape = tf.stack([tf.shape(xt)[0], full[0], full[1], shape_of(w)[1]])
    filters = spatial.dilate_filter(tf.transpose(w, (2, 3, 1, 0)), list(dilations))
    y = tf.nn.conv2d_transpose(xt, filters, out_shape, strides, "VALID")
    y = tf.pad(y, [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]])
    y = y[:, pads[0]:full[0] + extra[0] - pads[2], pads[1]:full[1] + extra[1] - pads[3], :]
    return _bias(spatial.nchw(y), b)
