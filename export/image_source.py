"""Where the export's real images come from: the dataset, or the few the model dir keeps.

Parity (and the fp16 comparison) needs real test images; int8 calibration needs real training
images. In order:
1. `--data_dir`: the dataset there (an error if it is not).
2. The dataset where the model's config (or TFDS_DATA_DIR) says, if it is on disk.
3. `serving_examples.npz` in the model dir, written by training (`nfi_tf.serving_examples`):
   test images only, so not when int8 calibration is asked for.
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

    def training_images(self, n: int) -> np.ndarray:
        if not self.has_training_images:
            raise NfiError(calibration_error(self.cfg.dataset))
        images, _ = data.load_arrays(self.cfg, "train", n, self.download)
        return data.uint8_to_float(images)


def calibration_error(dataset: str) -> str:
    return (f"int8 calibration (--quantize) needs real {dataset} training images and the dataset "
            f"is not available here (the model dir keeps only test images for parity): pass "
            f"--data_dir=<folder with the prepared tfds dataset>, or export without --quantize")


def open_source(model_dir: str, cfg: DataConfig, data_dir: str | None, download: bool,
                need_training_images: bool = False) -> ImageSource:
    if data_dir:
        return ImageSource(dataclasses.replace(cfg, data_dir=data_dir), download)
    try:
        return ImageSource(cfg, download=False)
    except DataUnavailableError:
        pass
    examples = serving_examples.load(model_dir)
    if examples is not None and not need_training_images:
        return ImageSource(cfg, download, examples)
    try:
        return ImageSource(cfg, download)  # int8 calibration: download rather than give up
    except DataUnavailableError as e:
        if examples is not None:
            raise NfiError(calibration_error(cfg.dataset)) from e
        raise DataUnavailableError(f"{e}; or keep the {serving_examples.FILE} that training "
                                   f"writes in the model dir") from e
