"""A backbone's input preprocessing, as the per-channel affine map the model applies to its
[0, 1]-pixel input (`nfi_tf.models.ChannelAffine`, inside the graph, so it reaches SavedModel
and ONNX).

`keras.applications.<module>.preprocess_input` on [0, 255] pixels, in [0, 1] pixel terms:
    tf          x * 2 - 1                                  (MobileNet, ResNetV2, Inception, ...)
    caffe       RGB -> BGR, x * 255 - ImageNet mean (BGR)  (ResNet, VGG)
    torch       (x - ImageNet mean) / ImageNet std         (DenseNet)
    pixels_255  x * 255: the model normalizes inside itself (EfficientNet, ConvNeXt, MobileNetV3)
    none        x as given: [0, 1] pixels (our own backbones, and a custom one by default)
"""

from __future__ import annotations

TF, CAFFE, TORCH, PIXELS_255, NO_PREPROCESSING = "tf", "caffe", "torch", "pixels_255", "none"
PREPROCESSING = (TF, CAFFE, TORCH, PIXELS_255, NO_PREPROCESSING)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def preprocessing_affine(mode: str, channels: int):
    """(channel order or None, per-channel scale, per-channel offset) mapping [0, 1] pixels x to
    `x[..., order] * scale + offset`, the input `mode` asks for."""
    if mode not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING} or a keras.applications "
                         f"name. Received: preprocessing={mode!r}")
    if mode in (CAFFE, TORCH) and channels != 3:
        raise ValueError(f"{mode} preprocessing normalizes RGB images (3 channels). "
                         f"Received: {channels} channel(s)")
    if mode == CAFFE:
        return (2, 1, 0), (255.0,) * 3, tuple(-m for m in _CAFFE_MEAN_BGR)
    if mode == TORCH:
        return None, tuple(1 / s for s in _TORCH_STD), tuple(-m / s for m, s in
                                                             zip(_TORCH_MEAN, _TORCH_STD))
    scale, offset = {TF: (2.0, -1.0), PIXELS_255: (255.0, 0.0), NO_PREPROCESSING: (1.0, 0.0)}[mode]
    return None, (scale,) * channels, (offset,) * channels
