"""Image files (PNG, JPEG, anything Pillow reads) as model inputs, and predictions on them."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from export.config import PredictConfig
from export.serve import Prediction, Predictor
from nfi_tf.errors import NfiError

_MODES = {1: "L", 3: "RGB"}


def load_image(path: str, image_shape: tuple[int, int, int], resize: bool = False) -> np.ndarray:
    """A uint8 HxWxC array in the model's channel layout (grayscale/RGB converted as needed).

    A size other than the model's is an error unless `resize`: silently rescaling changes
    what the model sees (and, for a robust model, which perturbation budget applies).
    """
    h, w, c = image_shape
    if c not in _MODES:
        raise NfiError(f"the model takes {c}-channel images; only 1 (grayscale) and 3 (RGB) "
                       f"can be read from image files")
    if not os.path.isfile(path):
        raise NfiError(f"no image file at {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode.startswith("I;16"):  # 16-bit PNG: keep the top 8 bits, not a clip
                img = Image.fromarray((np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8))
            img = img.convert(_MODES[c])
    except (UnidentifiedImageError, OSError) as e:
        raise NfiError(f"{path} is not a readable image (PNG or JPEG): {e}") from e
    if img.size != (w, h):
        if not resize:
            raise NfiError(f"{path} is {img.size[0]}x{img.size[1]} pixels; the model takes "
                           f"{w}x{h}. Pass --resize to resize it")
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8).reshape(h, w, c)


def format_prediction(path: str, prediction: Prediction, i: int, top_k: int) -> str:
    top = "  ".join(f"{name} {p:.4f}" for name, p in prediction.top(i, top_k))
    return (f"{path}: class {prediction.class_name(i)}  route {prediction.route_name(i)}  "
            f"top-{top_k}: {top}")


def predict_files(config: PredictConfig) -> tuple[Predictor, list[str]]:
    """Load the model and the images, predict them in one batch, one line per image."""
    predictor = Predictor(config.model, config.session)
    shape = predictor.metadata.image_shape
    batch = np.stack([load_image(p, shape, config.resize) for p in config.images])
    prediction = predictor.predict(batch)
    k = min(config.top_k, prediction.probabilities.shape[-1])
    return predictor, [format_prediction(p, prediction, i, k) for i, p in enumerate(config.images)]
