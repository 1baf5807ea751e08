"""A few real test images kept in the model dir, so the model can be exported without its dataset.

The export commits a model only after Keras, the SavedModel and ONNX Runtime agree on real
images (`export.parity`); on a serving machine the dataset is usually absent. Training therefore
writes the first `DEFAULT_EXAMPLES` test images (uint8, as tfds stores them), their labels and
the dataset info the export needs (image shape, class names) to `serving_examples.npz`
(compressed: 44 KB for MNIST, 0.73 MB for CIFAR-10). Test images, not training ones: parity is
judged on data the model did not fit. Too few for int8 calibration (which needs training
images), by design.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from nfi_tf import data, io_utils
from nfi_tf.config import DataConfig
from nfi_tf.errors import NfiError

FILE = "serving_examples.npz"
DEFAULT_EXAMPLES = 256  # the export's default --parity_examples


@dataclasses.dataclass(frozen=True)
class ServingExamples:
    images: np.ndarray  # uint8 NHWC
    labels: np.ndarray  # int32
    info: data.DatasetInfo
    path: str


def save(model_dir: str, cfg: DataConfig, info: data.DatasetInfo,
         n: int = DEFAULT_EXAMPLES, download: bool = True) -> str:
    images, labels = data.load_arrays(cfg, "test", n, download)
    path = os.path.join(model_dir, FILE)
    with io_utils.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez_compressed(f, images=images, labels=labels,
                                info=np.array(json.dumps(dataclasses.asdict(info))))
    return path


def load(model_dir: str) -> ServingExamples | None:
    """The stored examples of `model_dir`, or None when it has none (trained before they were
    kept, or copied without them)."""
    path = os.path.join(model_dir, FILE)
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"].astype(np.int32)
            fields = json.loads(str(z["info"]))
    except (OSError, ValueError, KeyError) as e:
        raise NfiError(f"{path} is corrupt ({type(e).__name__}: {e}); delete it or pass "
                       f"--data_dir") from e
    fields["image_shape"] = tuple(fields["image_shape"])
    fields["class_names"] = tuple(fields["class_names"])
    info = data.DatasetInfo(**fields)
    if images.dtype != np.uint8 or images.shape[1:] != info.image_shape or len(images) != len(labels):
        raise NfiError(f"{path} does not hold uint8 {info.image_shape} images with one label each. "
                       f"Received: images {images.dtype} {images.shape}, labels {labels.shape}")
    return ServingExamples(images, labels, info, path)
