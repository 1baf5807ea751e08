"""The geometry of Conv and the pools: ONNX's NCHW, TensorFlow's NHWC, and the padding rules.

TensorFlow's CPU convolutions and pools take channels last, so an NCHW operator transposes in
and out (inside a tf.function, Grappler removes the back-to-back pairs between two such ops).
Padding is made explicit before a VALID op, which states ONNX's rules once: `pads` as
[x1_begin, x2_begin, ..., x1_end, x2_end, ...], auto_pad SAME_UPPER (the odd pixel at the end),
SAME_LOWER (at the start) and VALID, and ceil_mode's extra end pixels, added only while the last
window still starts inside the input or its begin padding (ONNX Runtime's and PyTorch's rule).
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


@dataclasses.dataclass(frozen=True)
class Window:
    """One spatial axis: the stated kernel, stride, dilation and padding, and ceil_mode's extra."""

    kernel: int
    stride: int
    dilation: int
    begin: int
    end: int
    extra: int = 0  # ceil_mode's end pixels beyond `end` (never counted by AveragePool)

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def ceil_extra(size: int, w: Window) -> int:
    """End pixels ceil_mode adds so a last, partial window is computed."""
    room = size + w.begin + w.end - w.span
    count = -(-room // w.stride) + 1
    if (count - 1) * w.stride >= size + w.begin:  # that window would start in the end padding
        count -= 1
    return max(0, (count - 1) * w.stride + w.span - (size + w.begin + w.end))


def windows(node, sizes: list, kernel: tuple[int, ...], ceil_mode: bool = False) -> list[Window]:
    """Each spatial axis' window for an NCHW Conv or pool, from the node's attributes."""
    n = len(kernel)
    strides = tuple(node.attr("strides", (1,) * n))
    dilations = tuple(node.attr("dilations", (1,) * n))
    pads = tuple(node.attr("pads", (0,) * (2 * n)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    out = []
    for i in range(n):
        begin, end = pads[i], pads[n + i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if sizes[i] is None:
                raise node.unsupported(f"auto_pad={auto_pad} on a spatial size known only at run time")
            begin, end = same_pads(sizes[i], kernel[i], strides[i], dilations[i], auto_pad == "SAME_UPPER")
        elif auto_pad == "VALID":
            begin, end = 0, 0
        w = Window(kernel[i], strides[i], dilations[i], begin, end)
        if ceil_mode:
            if sizes[i] is None:
                raise node.unsupported("ceil_mode on a spatial size known only at run time")
            w = dataclasses.replace(w, extra=ceil_extra(sizes[i], w))
        out.append(w)
    return out


def nhwc(x):
    return tf.transpose(x, TO_NHWC)


def nchw(x):
    return tf.transpose(x, TO_NCHW)


def pad_nhwc(x, ws: list[Window], value: float = 0.0, with_extra: bool = True):
    """Pad the spatial axes of an NHWC tensor by the windows' begin/end (and extra) pixels."""
    spatial = [[w.begin, w.end + (w.extra if with_extra else 0)] for w in ws]
    if not any(b or e for b, e in spatial):
        return x
    return tf.pad(x, [[0, 0], *spatial, [0, 0]], constant_values=value)


def subsample(y, ws: list[Window]):
    """Every stride-th row and column: a strided op computed at stride 1 (TF refuses strides
    together with dilations) keeps exactly the strided op's outputs."""
    strides = [w.stride for w in ws]
    if all(s == 1 for s in strides):
        return y
    return y[:, ::strides[0], ::strides[1], :]


def strides_and_dilations(ws: list[Window]) -> tuple[list[int], list[int], bool]:
    """(strides, dilations, subsampled): TF's arguments, with strides moved to `subsample` when
    both are above 1."""
    strides = [w.stride for w in ws]
    dilations = [w.dilation for w in ws]
    both = any(s > 1 for s in strides) and any(d > 1 for d in dilations)
    return ([1] * len(ws) if both else strides), dilations, both


def dilate_filter(filters, dilations: list[int]):
    """An HWIO filter with dilation-1 zeros between its taps: a dilated convolution run as a
    plain one, because TensorFlow's CPU kernels have no dilated gradient without oneDNN."""
    for axis, d in enumerate(dilations):
        if d > 1:
            size = filters.shape[axis]
            pads = [[0, 0]] * 5
            pads[axis + 1] = [0, d - 1]
            spread = tf.pad(tf.expand_dims(filters, axis + 1), pads)  # each tap followed by d-1 zeros
            merged = tf.reshape(spread, [*filters.shape[:axis], size * d, *filters.shape[axis + 1:]])
            filters = merged[:(size - 1) * d + 1] if axis == 0 else merged[:, :(size - 1) * d + 1]
    return filters
