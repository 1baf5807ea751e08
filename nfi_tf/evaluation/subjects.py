"""Build the `Subject` (the model under test) from whatever a user hands over.

    from_trained(trained, out_dir)     an nfi-tf model dir, as `python -m nfi_tf.evaluate
                                       --model_dir` loads it (its config, dataset and classes)
    load_subject(model, x, ...)        anything `evaluate_classifier` takes: an nfi-tf model dir,
                                       a .keras/.h5 file, a SavedModel directory, an .onnx file
                                       (with its differentiable twin: twins.py), a Keras model
                                       or any callable images -> logits

A model nfi-tf trained (its outputs include the routed logits and the route) keeps every output
as a row and its route-aware attacks; anything else is one row, its logits.
"""

from __future__ import annotations

import os

from nfi_tf import outputs
from nfi_tf.errors import NfiError, check
from nfi_tf.evaluation import twins
from nfi_tf.evaluation.adapters import InputTransform, keras_logits, load_keras, saved_model_logits
from nfi_tf.evaluation.onnx_session import OnnxModel
from nfi_tf.evaluation.subject import Subject, compiled_score, file_fingerprint, weights_fingerprint
from nfi_tf.vocab import Method

LOGITS = outputs.LOGITS
MODEL_FILE = "model.keras"
_KERAS_FILES = (".keras", ".h5")
NO_GRADIENTS = (f"gradient attacks skipped: an ONNX file has no gradients and twin={twins.TwinChoice.NONE} "
                f"asked for no differentiable twin (the default, twin={twins.TwinChoice.AUTO}, builds one "
                f"from the ONNX graph)")


def _heads_kernel(model):
    return lambda: model.get_layer(outputs.HEADS_LAYER).tradeoff_kernel.numpy()


def from_trained(trained, out_dir: str | None) -> Subject:
    """A model dir `nfi_tf.train` wrote (nfi_tf.model_io.TrainedModel)."""
    method = Method(trained.config.model.method)
    return Subject(method=method, rows=outputs.scored_for(method), classifier=trained.classifier,
                   score=compiled_score(trained.classifier), dataset=trained.info.name,
                   num_classes=trained.info.num_classes, class_names=trained.info.class_names,
                   fingerprint=file_fingerprint(os.path.join(trained.model_dir, MODEL_FILE)),
                   out_dir=out_dir, heads_kernel=_heads_kernel(trained.classifier))


def _output_names(model) -> list[str]:
    try:
        out = model.output
    except (AttributeError, ValueError):  # a subclassed model that was never called
        return []
    return list(out) if isinstance(out, dict) else []


def _is_nfi_tf_model(model) -> bool:
    """A Keras model nfi-tf built: its outputs include the routed logits and the route."""
    names = _output_names(model)
    return outputs.ROUTED in names and outputs.ROUTE in names


def _nfi_subject(model, fingerprint: str, dataset: str, out_dir, described: str) -> Subject:
    method = Method.NFI if outputs.BENIGN in _output_names(model) else Method.TRADES
    num_classes = int(model.get_layer(outputs.HEADS_LAYER).num_classes)
    return Subject(method=method, rows=outputs.scored_for(method), classifier=model,
                   score=compiled_score(model), dataset=dataset, num_classes=num_classes,
                   class_names=tuple(str(i) for i in range(num_classes)), fingerprint=fingerprint,
                   out_dir=out_dir, description=described, heads_kernel=_heads_kernel(model))


def _plain(logits, score, x, dataset, out_dir, fingerprint, described, **extra) -> Subject:
    """One row, the logits: any classifier nfi-tf did not train."""
    def classifier(z, training=False):
        del training
        return {LOGITS: logits(z)}

    score = score or compiled_score(classifier)
    num_classes = int(score(x[:1])[LOGITS].shape[-1])
    return Subject(method=Method.CLASSIFIER, rows=(LOGITS,), classifier=classifier, score=score,
                   dataset=dataset, num_classes=num_classes,
                   class_names=tuple(str(i) for i in range(num_classes)), fingerprint=fingerprint,
                   out_dir=out_dir, description=described, **extra)


def _onnx(path, x, output, transform, twin, batch_size, dataset, out_dir) -> Subject:
    """An ONNX file: scored by ONNX Runtime on the file itself (every clean and adversarial image),
    attacked by Square through the file and by the gradient attacks through its twin (twins.py,
    checked against the file first)."""
    query = OnnxModel(path, output, transform, batch_size, default_output=LOGITS)
    described = (f"ONNX file {os.path.basename(path)} ({'NCHW' if query.nchw else 'NHWC'} input, "
                 f"output {query.output_name!r}) scored through ONNX Runtime, which re-scores every "
                 f"adversarial image")
    chosen = twins.resolve(twin, path, query, x, output, transform)
    if chosen is None:
        described += f"; no twin (twin={twins.TwinChoice.NONE}): Square alone, through the file"
    else:
        described += "; gradient attacks on " + chosen.described
    logits = None if chosen is None else chosen.logits
    return _plain(logits, lambda xs: {LOGITS: query(xs)}, x, dataset, out_dir, file_fingerprint(path),
                  described, gradients=chosen is not None, query=query,
                  notes=[] if chosen else [NO_GRADIENTS])


def _from_path(path, x, output, transform, twin, batch_size, dataset, out_dir) -> Subject:
    if os.path.isfile(os.path.join(path, MODEL_FILE)):  # an nfi-tf model dir
        path = os.path.join(path, MODEL_FILE)
    if path.endswith(_KERAS_FILES):
        model = load_keras(path)
        described = f"Keras model {os.path.basename(path)}"
        if _is_nfi_tf_model(model):
            check(transform.identity, "an nfi model takes images in [0, 1]: no input transform applies")
            return _nfi_subject(model, file_fingerprint(path), dataset, out_dir, described)
        return _plain(keras_logits(model, output, transform, described), None, x, dataset, out_dir,
                      file_fingerprint(path), _with_transform(described, transform))
    if path.endswith(".onnx"):
        return _onnx(path, x, output, transform, twin, batch_size, dataset, out_dir)
    if os.path.isdir(path):
        described = f"SavedModel {os.path.basename(path)}"
        return _plain(saved_model_logits(path, output, transform), None, x, dataset, out_dir,
                      file_fingerprint(path), _with_transform(described, transform))
    raise NfiError(f"model must be a Keras model, a callable, a .keras file, a SavedModel "
                   f"directory or an .onnx file. Received: {path}")


def _with_transform(described: str, transform: InputTransform) -> str:
    return described if transform.identity else described + "; " + transform.describe()


def load_subject(model, x, *, output: str | None = None, transform: InputTransform | None = None,
                 twin=None, batch_size: int = 200, dataset: str = "custom",
                 out_dir: str | None = None) -> Subject:
    """The subject of whatever `model` is; `x` (numpy NHWC images in [0, 1]) is what the twin's
    parity is checked on and what tells a plain classifier's number of classes."""
    import keras

    transform = transform or InputTransform()
    if isinstance(model, (str, os.PathLike)):
        return _from_path(os.fspath(model), x, output, transform, twin, batch_size, dataset, out_dir)
    if isinstance(model, keras.Model) and _is_nfi_tf_model(model):
        check(transform.identity, "an nfi model takes images in [0, 1]: no input transform applies")
        return _nfi_subject(model, weights_fingerprint(model.weights), dataset, out_dir,
                            f"{type(model).__name__} in memory")
    if callable(model):
        weights = getattr(model, "weights", None)
        fingerprint = weights_fingerprint(weights) if weights else "callable"
        return _plain(keras_logits(model, output, transform, "the model"), None, x, dataset, out_dir,
                      fingerprint, _with_transform(f"{type(model).__name__} in memory", transform))
    raise NfiError(f"model must be a Keras model, a callable or a path. Received: {type(model).__name__}")
