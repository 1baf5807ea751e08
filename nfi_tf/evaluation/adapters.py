"""Any model as an images -> logits function: the adapters the subjects are built from.

Keras models and callables (a logits output, or a dict/list with the logits named), Keras files,
SavedModel directories, an input transform for models that take other pixels than [0, 1] (and
the NCHW layout of a file or twin that takes channels first). (An ONNX file itself runs through
onnx_session.py, its differentiable twin is twins.py's.)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from nfi_tf import outputs
from nfi_tf.errors import NfiError

LOGITS = outputs.LOGITS


@dataclasses.dataclass(frozen=True)
class InputTransform:
    """What the model sees of an image x in [0, 1]: ((x * scale + offset) - mean) / std."""

    scale: float = 1.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0 and self.mean is None and self.std is None

    def describe(self) -> str:
        if self.identity:
            return "images in [0, 1]"
        text = f"x * {self.scale:g} + {self.offset:g}"
        if self.mean is not None or self.std is not None:
            text = f"(({text}) - mean {list(self.mean or [0])}) / std {list(self.std or [1])}"
        return "the model sees " + text

    def apply(self, x):
        out = x * self.scale + self.offset
        if self.mean is not None:
            out = out - np.asarray(self.mean, np.float32)
        if self.std is not None:
            out = out / np.asarray(self.std, np.float32)
        return out


def pick_logits(out, output: str | None, where: str):
    """The logits among a model's outputs (a tensor, a dict or a list)."""
    if isinstance(out, dict):
        if output is None:
            if len(out) == 1:
                return next(iter(out.values()))
            if LOGITS in out:
                return out[LOGITS]
            raise NfiError(f"{where} returns several outputs; name the logits with output=. "
                           f"Received outputs: {sorted(out)}")
        if output not in out:
            raise NfiError(f"{where} has no output {output!r}. Received outputs: {sorted(out)}")
        return out[output]
    if isinstance(out, (list, tuple)):
        if output is None:
            if len(out) == 1:
                return out[0]
            raise NfiError(f"{where} returns {len(out)} outputs; give output= as their index")
        return out[int(output)]
    return out


@dataclasses.dataclass(frozen=True)
class Layout:
    """An input transform followed by NHWC -> NCHW when the model takes channels first."""

    transform: InputTransform
    nchw: bool

    def apply(self, x):
        import tensorflow as tf

        out = self.transform.apply(x)
        return tf.transpose(out, [0, 3, 1, 2]) if self.nchw else out


def load_keras(path: str, what: str = "Keras model"):
    """A .keras/.h5 file, loaded without its training state; a one-line error if it cannot be."""
    import keras

    if not os.path.isfile(path):
        raise NfiError(f"no {what} at {path}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for an unreadable file
        raise NfiError(f"{path} is not a loadable Keras model ({type(e).__name__})") from e


def keras_logits(model, output, transform: InputTransform, where: str) -> Callable:
    import keras

    call = (lambda z: model(z, training=False)) if isinstance(model, keras.Model) else model
    return lambda z: pick_logits(call(transform.apply(z)), output, where)


def saved_model_logits(path: str, output, transform: InputTransform) -> Callable:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # TensorFlow raises many types for an unreadable directory
        raise NfiError(f"{path} is not a loadable SavedModel ({type(e).__name__})") from e
    fn = loaded.signatures.get("serving_default") if hasattr(loaded, "signatures") else None
    if fn is None:
        return keras_logits(loaded, output, transform, path)
    name = list(fn.structured_input_signature[1])[0]
    return lambda z: pick_logits(fn(**{name: transform.apply(z)}), output, path)
