"""The differentiable twin of an ONNX file: what the gradient attacks run on, never what is scored.

ONNX Runtime scores the file itself (every clean and adversarial image) and runs Square on it,
but gives no gradients; APGD-CE, APGD-T and FAB-T run on a twin, a TensorFlow function of the
same network:

    twin=None or "auto"   the automatic twin, built from the ONNX graph (nfi_tf.onnx_twin)
    twin="none"           no twin: Square alone, and the report says why
    twin=PATH             a Keras model file (.keras/.h5) of the same network, by hand
    twin=model            a Keras model or any callable of the same network, by hand

The automatic twin takes the file's own layout. A hand-written one may take the file's layout or
NHWC, Keras' natural one: its declared input shape tells which, and an NHWC twin of an NCHW
file is given the images NHWC (the file gets them transposed). An NCHW twin of an NHWC file is
refused, as is a twin whose shape fits neither; a twin that declares no shape is tried in the
file's layout. Whichever runs, it is trusted only after `check_twin`: its logits against ONNX
Runtime on the evaluation's own images. Every failure is a one-line NfiError.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from nfi_tf.errors import NfiError, check
from nfi_tf.evaluation.adapters import InputTransform, Layout, keras_logits, load_keras
from nfi_tf.vocab import StrEnum

TWIN_ATOL = 1e-3  # relative to the logits' scale: float32 converters agree far below this
_PARITY_BATCH = 256


class TwinChoice(StrEnum):
    """The twins named by a word rather than given (`--twin=auto`, `--twin=none`)."""

    AUTO = "auto"
    NONE = "none"


@dataclasses.dataclass(frozen=True)
class Parity:
    """The twin against ONNX Runtime on the evaluation's images."""

    images: int
    max_diff: float
    allowed: float
    agreement: float  # share of images whose argmax agrees

    def describe(self) -> str:
        return (f"twin checked against ONNX Runtime on {self.images} images: max |diff| "
                f"{self.max_diff:.2g} (allowed {self.allowed:.2g}), argmax agreement "
                f"{100 * self.agreement:g}%")


@dataclasses.dataclass(frozen=True)
class Twin:
    logits: Callable  # NHWC images in [0, 1] (a tensor) -> the logits, differentiable
    described: str  # which twin, in which layout, and its parity, for the report
    parity: Parity


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _one_line(run: Callable, failed: str, hint: str):
    """run(); an NfiError passes as it is, any other exception (TensorFlow's or Keras', often many
    lines long) becomes one line: `failed` (exception type: its first line) and the hint."""
    try:
        return run()
    except NfiError:
        raise
    except Exception as e:  # a twin may fail in any of TensorFlow's or Keras' many ways
        raise NfiError(f"{failed} ({_first_line(e)}){hint}") from e


def check_twin(twin_logits, query, x, who: str = "the differentiable twin", hint: str = "") -> Parity:
    """Max |twin - ONNX Runtime| on the evaluation's images; a one-line error past tolerance."""
    import tensorflow as tf

    ref = query(x)
    got = np.concatenate([np.asarray(twin_logits(tf.constant(x[i:i + _PARITY_BATCH])))
                          for i in range(0, len(x), _PARITY_BATCH)])
    check(got.shape == ref.shape, f"{who}'s logits have shape {got.shape}, the ONNX file's "
                                  f"{ref.shape}: not the same model{hint}")
    diff = float(np.max(np.abs(got - ref)))
    allowed = TWIN_ATOL * max(1.0, float(np.max(np.abs(ref))))
    agree = float(np.mean(np.argmax(got, 1) == np.argmax(ref, 1)))
    if not diff <= allowed or agree < 1.0:  # NaN logits fail too
        raise NfiError(f"{who} disagrees with ONNX Runtime on the evaluation images (max |diff| "
                       f"{diff:.3g} > {allowed:.3g}, argmax agreement {100 * agree:.2f}%): its gradients "
                       f"would not attack the file{hint}")
    return Parity(len(x), diff, allowed, agree)


# === The automatic twin ===

def auto_twin(path: str, query, x, transform: InputTransform) -> Twin:
    """Built from the file's graph, run in the file's layout; refused in one line when an
    operator is outside the supported set or the twin disagrees with ONNX Runtime."""
    from nfi_tf.onnx_twin import build_twin
    from nfi_tf.onnx_twin.graph import FALLBACK

    failed = f"the automatic twin of {os.path.basename(path)} failed"
    twin = _one_line(lambda: build_twin(path, output=query.output_name), failed, f"; {FALLBACK}")
    logits = keras_logits(twin, None, Layout(transform, query.nchw), "the automatic twin")
    parity = _one_line(lambda: check_twin(logits, query, x, "the automatic twin", f"; {FALLBACK}"),
                       failed, f"; {FALLBACK}")
    ops = sorted({node.op_type for node in twin.graph.nodes})
    described = (f"the automatic twin built from the ONNX graph ({len(twin.graph.nodes)} nodes, ops: "
                 f"{', '.join(ops)}), {parity.describe()}")
    return Twin(logits, described, parity)


# === A hand-written twin ===

def _declared_dims(model) -> tuple | None:
    """The twin's declared input shape without the batch (None where free), if it states one."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError, TypeError):  # a subclassed model never built, a function
        return None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None
    if not all(d is None or isinstance(d, (int, np.integer)) for d in shape):
        return None
    return tuple(None if d is None else int(d) for d in shape[1:])


def _fits(dims: tuple, want: tuple) -> bool:
    return all(d is None or d == w for d, w in zip(dims, want))


def _images(nchw: bool, hwc: tuple) -> str:
    h, w, c = hwc
    return f"NCHW images (N, {c}, {h}, {w})" if nchw else f"NHWC images (N, {h}, {w}, {c})"


def _needs(file_nchw: bool, hwc: tuple) -> str:
    """What a twin of the file may take: the file's layout, or NHWC for an NCHW file."""
    if file_nchw:
        return f"{_images(True, hwc)} or {_images(False, hwc)}"
    return _images(False, hwc)


def twin_takes_nchw(model, name: str, hwc: tuple, file_nchw: bool, file_name: str) -> bool:
    """The twin's layout, from its declared input shape against the images' (H, W, C): NHWC or
    NCHW where only one fits; the file's where both do or it declares none; else one line."""
    dims = _declared_dims(model)
    if dims is None:
        return file_nchw
    nhwc, nchw = _fits(dims, hwc), _fits(dims, (hwc[2], hwc[0], hwc[1]))
    if nhwc and nchw:
        return file_nchw
    if nchw and not file_nchw:
        raise NfiError(f"the twin {name} takes NCHW images but {file_name} takes NHWC: give a twin "
                       f"that takes {_images(False, hwc)}. Received: twin input shape={(None, *dims)}")
    check(nhwc or nchw, f"the twin {name} takes neither layout of these images; {file_name} takes "
                        f"{_images(file_nchw, hwc)}: give a twin that takes {_needs(file_nchw, hwc)}. "
                        f"Received: twin input shape={(None, *dims)}")
    return nchw


def user_twin(model, name: str, query, x, output, transform: InputTransform) -> Twin:
    """A twin written by hand (a Keras model or callable), in the file's layout or NHWC."""
    hwc = tuple(int(d) for d in x.shape[1:])
    file_name = os.path.basename(query.path)
    nchw = twin_takes_nchw(model, name, hwc, query.nchw, file_name)
    logits = keras_logits(model, output, Layout(transform, nchw), f"the twin {name}")
    failed = f"the twin {name} failed on {_images(nchw, hwc)}"
    hint = f"; {file_name} takes {_images(query.nchw, hwc)}: give a twin that takes {_needs(query.nchw, hwc)}"
    parity = _one_line(lambda: check_twin(logits, query, x), failed, hint)
    layout = "NCHW" if nchw else "NHWC"
    how = "the file's layout" if nchw == query.nchw else "the file's NCHW images transposed for it"
    return Twin(logits, f"the user twin {name} ({layout}, {how}), {parity.describe()}", parity)


def resolve(twin, path: str, query, x, output, transform: InputTransform) -> Twin | None:
    """The twin `twin=` asks for (None when it is "none"); see the module docstring."""
    word = twin.strip().lower() if isinstance(twin, str) else None
    if twin is None or word in ("", TwinChoice.AUTO):
        return auto_twin(path, query, x, transform)
    if word == TwinChoice.NONE:
        return None
    if isinstance(twin, (str, os.PathLike)):
        twin_path = os.fspath(twin)
        return user_twin(load_keras(twin_path, "Keras twin"), os.path.basename(twin_path), query, x, output,
                         transform)
    if callable(twin):
        return user_twin(twin, f"{type(twin).__name__} in memory", query, x, output, transform)
    raise NfiError(f"twin must be '{TwinChoice.AUTO}', '{TwinChoice.NONE}', a Keras model file, a Keras "
                   f"model or a callable. Received: twin={type(twin).__name__}")
