"""Where the export's real images come from: the dataset, or the few the model dir keeps.

Parity (and each precision's comparison with fp32) needs real test images; a precision may also
need real training images (int8: calibration, `PrecisionSpec.training_images`). In order:
1. `--data_dir`: the dataset there (an error if it is not).
2. The dataset where the model's config (or TFDS_DATA_DIR) says, if it is on disk.
3. `serving_examples.npz` in the model dir, written by training (`nfi_tf.serving_examples`):
   test images only, so not when training images are needed.
4. Otherwise the dataset, downloaded when allowed (the previous behaviour).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nfi_tf import data, serving_examples
from nfi_tf.config import DataConfig
from nfi_tf.errors import DataUnavailableError, NfiError


class ImageSource:
    """Real images and the dataset info, from the dataset (`serving_examples` None) or from
    the model dir's stored examples."""

    def __init__(self, cfg: DataConfig, download: bool,
                 examples: serving_examples.ServingExamples | None = None):
        self.cfg, self.download, self.examples = cfg, download, examples
        self.info = examples.info if examples else data.load_info(cfg, download)

    @property
    def description(self) -> str:
        if self.examples:
            return f"the model dir's {serving_examples.FILE}"
        return f"the {self.cfg.dataset} test split"

    @property
    def has_training_images(self) -> bool:
        return self.examples is None

    def test_images(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to `n` real test images (float32 in [0, 1]) and their labels."""
        if self.examples:
            images, labels = self.examples.images[:n], self.examples.labels[:n]
        else:
            images, labels = data.load_arrays(self.cfg, "test", n, self.download)
        return data.uint8_to_float(images), labels

    def training_images(self, n: int, purpose: str = "this export") -> np.ndarray:
        """`n` real training images; `purpose` says in the error what needs them."""
        if not self.has_training_images:
            raise NfiError(training_images_error(self.cfg.dataset, purpose))
        images, _ = data.load_arrays(self.cfg, "train", n, self.download)
        return data.uint8_to_float(images)


def training_images_error(dataset: str, purpose: str) -> str:
    return (f"{purpose} needs real {dataset} training images and the dataset is not available "
            f"here (the model dir keeps only test images for parity): pass --data_dir=<folder "
            f"with the prepared tfds dataset>, or export without it")


def open_source(model_dir: str, cfg: DataConfig, data_dir: str | None, download: bool,
                training_images_for: str | None = None) -> ImageSource:
    """The export's images; `training_images_for`: what needs real training images (int8
    calibration), None when test images suffice."""
    if data_dir:
        return ImageSource(dataclasses.replace(cfg, data_dir=data_dir), download)
    try:
        return ImageSource(cfg, download=False)
    except DataUnavailableError:
        pass
    examples = serving_examples.load(model_dir)
    if examples is not None and training_images_for is None:
        return ImageSource(cfg, download, examples)
    try:
        return ImageSource(cfg, download)  # training images needed: download rather than give up
    except DataUnavailableError as e:
        if examples is not None:
            raise NfiError(training_images_error(cfg.dataset, training_images_for)) from e
        raise DataUnavailableError(f"{e}; or keep the {serving_examples.FILE} that training "
                                   f"writes in the model dir") from e
