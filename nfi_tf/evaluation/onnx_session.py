"""An ONNX file through ONNX Runtime, as a numpy function: NHWC images in [0, 1] -> one output.

The one ONNX session of the evaluation, for both of its uses: the exported nfi model that
`--onnx` scores (and attacks with Square) beside the Keras model, and any classifier's .onnx file
that `evaluate_classifier` evaluates. A file whose input is NCHW gets the images transposed; an
input transform (models that take other pixels than [0, 1]) is applied first.
"""

from __future__ import annotations

import os

import numpy as np

from nfi_tf.errors import NfiError
from nfi_tf.evaluation.adapters import InputTransform


def _channels_first(shape: list) -> bool:
    """NCHW when the channel axis (1 or 3 wide) is second and the last axis is not a channel one."""
    return len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)


class OnnxModel:
    """Callable: float32 NHWC images in [0, 1] -> the file's `output` (numpy), in batches.

    `output`: the output to return (None: `default_output` if the file has it, else its first).
    `required`: the output must exist (`output` is then required to be found, with the hint).
    """

    def __init__(self, path: str, output: str | None = None, transform: InputTransform | None = None,
                 batch_size: int = 500, default_output: str | None = None, missing_hint: str = ""):
        import onnxruntime as ort

        if not os.path.isfile(path):
            raise NfiError(f"no ONNX model at {path}{': ' + missing_hint if missing_hint else ''}")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise NfiError(f"{path} is not a loadable ONNX model ({type(e).__name__})") from e
        inp = self.session.get_inputs()[0]
        self.path, self.input_name, self.batch_size = path, inp.name, int(batch_size)
        self.nchw = _channels_first(list(inp.shape))
        self.transform = transform or InputTransform()
        names = [o.name for o in self.session.get_outputs()]
        if output is None:
            output = default_output if default_output in names else names[0]
        if output not in names:
            raise NfiError(f"{path} has no output {output!r}. Received outputs: {names}")
        self.output_name = output

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(self.transform.apply(np.asarray(images, np.float32)), np.float32)
        if self.nchw:
            x = np.transpose(x, (0, 3, 1, 2))
        x = np.ascontiguousarray(x)
        parts = [self.session.run([self.output_name], {self.input_name: x[i:i + self.batch_size]})[0]
                 for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
