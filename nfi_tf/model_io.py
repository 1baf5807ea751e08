"""Load what `nfi_tf.train` wrote (the config, the dataset info and the trained classifier), and
write the same model dir for a classifier trained elsewhere (Keras' `fit()`)."""

from __future__ import annotations

import dataclasses
import os
import zipfile

import keras

from nfi_tf import data, io_utils
from nfi_tf import serving_examples as serving_examples_lib
from nfi_tf.config import Config
from nfi_tf.errors import NfiError

# Registers the custom layers with Keras' deserializer.
from nfi_tf.models import classifier as _classifier  # noqa: F401


@dataclasses.dataclass
class TrainedModel:
    config: Config
    classifier: keras.Model
    info: data.DatasetInfo
    model_dir: str


def load_classifier(path: str) -> keras.Model:
    if not os.path.exists(path):
        raise NfiError(f"no trained model at {path}: train one with python -m nfi_tf.train "
                       f"(it writes model.keras when training finishes)")
    try:
        return keras.models.load_model(path, compile=False)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError) as e:
        raise NfiError(f"{path} is corrupt or not a Keras model ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''})") from e


def load_model(path: str) -> keras.Model:
    """The trained classifier from a model dir (its model.keras) or a .keras file path."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    return load_classifier(path)


def load_trained(model_dir: str, download: bool = True) -> TrainedModel:
    """The config (config.json), dataset info and classifier (model.keras) of a model dir."""
    if not os.path.isdir(model_dir):
        raise NfiError(f"model dir {model_dir} does not exist")
    config = Config.load(os.path.join(model_dir, "config.json"))
    classifier = load_classifier(os.path.join(model_dir, "model.keras"))
    info = data.load_info(config.data, download)
    return TrainedModel(config, classifier, info, model_dir)


def save_model_dir(classifier: keras.Model, config: Config, model_dir: str, *,
                   serving_examples: bool = True, download: bool = True) -> str:
    """Write `model_dir` as `python -m nfi_tf.train` leaves it: config.json, model.keras and
    (unless `serving_examples=False`) serving_examples.npz, a few real test images of
    `config.data`'s dataset for the export's parity check. `export`, `nfi_tf.evaluate` and
    `load_trained` then take it. `config.model` must describe `classifier`
    (`nfi_tf.training.step.config_for` makes it so; `AdversarialTrainer.save_model_dir` uses it)."""
    os.makedirs(model_dir, exist_ok=True)
    config.save(os.path.join(model_dir, "config.json"))
    with io_utils.atomic_path(os.path.join(model_dir, "model.keras"), suffix=".keras") as tmp:
        classifier.save(tmp)
    if serving_examples:
        info = data.load_info(config.data, download)
        serving_examples_lib.save(model_dir, config.data, info, download=download)
    return model_dir
