"""`custom`: a backbone given from Python (`nfi_tf.build_classifier(backbone=model, ...)`), which
config.json records by this name. Its D is read off the model when the classifier is built
(the heads check robust_dims < D there), so the config only knows robust_dims as the number the
model was built with; it cannot be rebuilt from the config (the model dir's model.keras is it).
"""

from nfi_tf.backbones import registry
from nfi_tf.errors import NfiError

NAME = "custom"


def _build(model_config, image_shape):
    raise NfiError("backbone=custom is built in Python: nfi_tf.build_classifier(backbone=<keras.Model>, "
                   "num_classes=...), or load its model dir's model.keras. Received: backbone='custom'")


SPEC = registry.BackboneSpec(name=NAME, build=_build, feature_dims=None, listed=False)
