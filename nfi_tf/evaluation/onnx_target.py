"""The exported model as an attack target: ONNX Runtime's routed logits as a numpy query.

A user deploys the .onnx file, not the Keras model: the evaluation scores every adversarial
input it made on the exported model too, and runs the gradient-free Square attack against it
through ONNX Runtime, so the robust number is checked on the exact artifact that is served.
"""

from __future__ import annotations

import os

import numpy as np

from nfi_tf import outputs
from nfi_tf.errors import NfiError

OUTPUT = outputs.ROUTED  # the served prediction


class OnnxQuery:
    """Callable: float32 NHWC images in [0, 1] -> the ONNX model's routed logits (numpy)."""

    def __init__(self, path: str, batch_size: int = 500):
        import onnxruntime as ort

        if not os.path.isfile(path):
            raise NfiError(f"no ONNX model at {path}: export one with python -m export.to_onnx")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise NfiError(f"{path} is not a loadable ONNX model ({type(e).__name__})") from e
        names = [o.name for o in self.session.get_outputs()]
        if OUTPUT not in names:
            raise NfiError(f"{path} has no '{OUTPUT}' output. Received outputs: {names}")
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = int(batch_size)
        self.path = path

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, np.float32)
        parts = [self.session.run([OUTPUT], {self.input_name: images[i:i + self.batch_size]})[0]
                 for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
