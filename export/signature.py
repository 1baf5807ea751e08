"""The serving function: one tf.function with an explicit input signature, shared by the
SavedModel (`serving_default`) and the ONNX conversion, so both serve exactly the same graph."""

from __future__ import annotations

import keras
import tensorflow as tf

from nfi_tf import outputs as output_names

INPUT_NAME = "image"
SERVING_OUTPUTS = output_names.SERVED  # in this order; see nfi_tf/outputs.py


def input_spec(image_shape: tuple[int, int, int]) -> tf.TensorSpec:
    """float32 NHWC images in [0, 1] with a dynamic batch."""
    return tf.TensorSpec([None, *image_shape], tf.float32, name=INPUT_NAME)


def serving_outputs(classifier: keras.Model) -> tuple[str, ...]:
    names = set(classifier.output.keys()) if isinstance(classifier.output, dict) else set()
    missing = set(output_names.SERVED_REQUIRED) - names
    if missing:
        raise ValueError(f"the classifier has no outputs {sorted(missing)}: is it a model built "
                         f"by nfi_tf.models.build_classifier? Received outputs: {sorted(names)}")
    return tuple(n for n in SERVING_OUTPUTS if n in names)


def serving_function(classifier: keras.Model,
                     image_shape: tuple[int, int, int]) -> tf.types.experimental.GenericFunction:
    """`{name: tensor}` of SERVING_OUTPUTS for a batch of images, in inference mode."""
    names = serving_outputs(classifier)

    @tf.function(input_signature=[input_spec(image_shape)])
    def serve(image):
        outputs = classifier(image, training=False)
        return {name: outputs[name] for name in names}

    return serve
