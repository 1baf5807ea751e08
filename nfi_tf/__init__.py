"""nfi_tf: "No Feature Is an Island" in Keras 3 / TensorFlow.

Importing the package registers every custom layer with Keras, so a model written by
`python -m nfi_tf.train` loads with plain `keras.models.load_model(path)`:

    import nfi_tf
    model = nfi_tf.load_model("runs/mnist")          # a model dir, or a path to model.keras
    out = model(images)                              # dict: routed, route, tradeoff, benign, ...

Your own backbone and Keras' fit(): `build_classifier(backbone=..., num_classes=...)`,
`make_trainer(config, classifier)`, `compile()`, `fit(...)`, `trainer.save_model_dir(path)`
(docs/own_model.md, "Your own backbone and `fit()`").
"""

import os

# TensorFlow's C++ start-up chatter buries the one line a user needs; keep warnings and up.
# Set before TensorFlow loads (the models below import it); a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nfi_tf.cpu_kernels import prefer_onednn  # noqa: E402

prefer_onednn()  # oneDNN's convolutions on every x86-64 Linux CPU: x1.4 on AVX2 (cpu_kernels.py)

from nfi_tf.quiet_start import quiet_import  # noqa: E402

quiet_import()  # the CUDA notices a CPU-only machine prints before any logging setting applies

from nfi_tf import models  # noqa: E402  (registers the custom layers with Keras)
from nfi_tf.errors import NfiError  # noqa: E402
from nfi_tf.evaluation.classifier import evaluate_classifier  # noqa: E402
from nfi_tf.model_io import load_model, load_trained, save_model_dir  # noqa: E402
from nfi_tf.models import build_classifier  # noqa: E402
from nfi_tf.training.step import AdversarialTrainer, make_trainer  # noqa: E402

__version__ = "0.1.0"
__all__ = ["AdversarialTrainer", "NfiError", "build_classifier", "evaluate_classifier", "load_model",
           "load_trained", "make_trainer", "models", "save_model_dir"]
