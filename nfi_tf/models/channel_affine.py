"""A backbone's input preprocessing as one layer inside the model: [0, 1] pixels in.

keras.applications models expect their own input range (`preprocess_input`: [-1, 1], caffe's
BGR minus the ImageNet mean, torch's mean/std, or [0, 255]); the nfi model keeps eps in [0, 1]
pixel units (MadryLab/robustness' normalization-inside-the-model), so the mapping is part of
the graph and reaches the SavedModel and ONNX exports (a Gather, a Mul and an Add).
"""

import keras
from keras import layers, ops

from nfi_tf.backbones import preprocessing


@keras.saving.register_keras_serializable(package="nfi_tf")
class ChannelAffine(layers.Layer):
    """y[..., c] = x[..., order[c]] * scale[c] + offset[c] on channels-last images.

    Args:
        scale: per-channel multipliers.
        offset: per-channel offsets (added after scaling).
        order: channel permutation applied first (caffe's RGB -> BGR is (2, 1, 0)), or None.
    """

    def __init__(self, scale, offset, order=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(s) for s in scale]
        self.offset = [float(o) for o in offset]
        self.order = None if order is None else [int(i) for i in order]
        if len(self.scale) != len(self.offset) or (self.order and len(self.order) != len(self.scale)):
            raise ValueError(f"scale, offset and order need one entry per channel. Received: "
                             f"scale={self.scale}, offset={self.offset}, order={self.order}")

    @classmethod
    def for_mode(cls, mode: str, channels: int, **kwargs) -> "ChannelAffine":
        """The layer of a `nfi_tf.backbones.PREPROCESSING` mode on `channels`-channel images."""
        order, scale, offset = preprocessing.preprocessing_affine(mode, channels)
        return cls(scale, offset, order, **kwargs)

    def build(self, input_shape):
        if input_shape[-1] is not None and int(input_shape[-1]) != len(self.scale):
            raise ValueError(f"ChannelAffine has {len(self.scale)} channels. "
                             f"Received: input_shape={input_shape}")

    def call(self, x):
        if self.order is not None:
            x = ops.take(x, self.order, axis=-1)
        scale = ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
        offset = ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        return ops.cast(x, self.compute_dtype) * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, offset=self.offset, order=self.order)
        return config
