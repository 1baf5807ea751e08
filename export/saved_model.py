"""Write and reload the TF SavedModel that serves `signature.serving_function`."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from nfi_tf.errors import NfiError

SIGNATURE = "serving_default"
# TF Serving's convention for files that are not part of the graph.
METADATA_FILE = os.path.join("assets.extra", "nfi_metadata.json")


def write_saved_model(classifier: keras.Model, serve: tf.types.experimental.GenericFunction,
                      path: str, metadata: dict[str, str]) -> None:
    """Save `serve` as `serving_default` (with the classifier's variables) into `path`."""
    module = tf.Module()
    module.classifier = classifier  # tracks the variables the signature reads
    module.serve = serve
    tf.saved_model.save(module, path, signatures={SIGNATURE: serve.get_concrete_function()})
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)


class LoadedSavedModel:
    """The `serving_default` signature of a SavedModel, called on numpy batches."""

    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise NfiError(f"no SavedModel at {path}: run python -m export.to_onnx --model_dir=...")
        # Keep the loaded object: the signature only holds weak references to its variables.
        self._loaded = tf.saved_model.load(path)
        if SIGNATURE not in self._loaded.signatures:
            raise NfiError(f"{path} has no {SIGNATURE!r} signature. "
                           f"Received signatures: {sorted(self._loaded.signatures)}")
        self.signature = self._loaded.signatures[SIGNATURE]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))

    def __call__(self, images) -> dict:
        outputs = self.signature(**{self.input_name: tf.convert_to_tensor(images, tf.float32)})
        return {name: value.numpy() for name, value in outputs.items()}
