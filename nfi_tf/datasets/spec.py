"""What a `--dataset` string names: a tfds set, an image folder or an .npz file."""

from __future__ import annotations

import dataclasses
import os

from nfi_tf.errors import NfiError

FOLDER_PREFIX = "folder:"
NPZ_PREFIX = "npz:"
TFDS, FOLDER, NPZ = "tfds", "folder", "npz"
FORMS = ("a tensorflow-datasets name (mnist, cifar10, cifar100, svhn_cropped, ...), "
         "folder:PATH (one subfolder of PNG/JPEG images per class) or PATH.npz (arrays x, y)")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    kind: str  # TFDS, FOLDER or NPZ
    name: str  # the canonical --dataset string: a tfds name, folder:/abs/path or npz:/abs/file
    path: str | None = None


def parse(dataset: str) -> DatasetSpec:
    """The source `dataset` names; paths are made absolute (config.json then works from any
    directory) and must exist."""
    if not dataset:
        raise NfiError(f"dataset must be {FORMS}. Received: dataset=''")
    if dataset.startswith(FOLDER_PREFIX):
        path = _abs(dataset[len(FOLDER_PREFIX):])
        if not os.path.isdir(path):
            raise NfiError(f"no image folder at {path}: --dataset=folder:PATH needs a directory "
                           f"with one subfolder of images per class (or PATH/train and PATH/test "
                           f"holding them). Received: dataset={dataset!r}")
        return DatasetSpec(FOLDER, FOLDER_PREFIX + path, path)
    if dataset.startswith(NPZ_PREFIX) or dataset.endswith(".npz"):
        path = _abs(dataset.removeprefix(NPZ_PREFIX))
        if not os.path.isfile(path):
            raise NfiError(f"no .npz file at {path}: --dataset=PATH.npz needs a file with arrays "
                           f"x (N,H,W,C) and y (N,). Received: dataset={dataset!r}")
        return DatasetSpec(NPZ, NPZ_PREFIX + path, path)
    if os.path.isdir(dataset):  # a bare folder path: what folder:PATH means
        path = _abs(dataset)
        return DatasetSpec(FOLDER, FOLDER_PREFIX + path, path)
    if dataset.startswith(("/", "./", "../", "~")):
        raise NfiError(f"no such file or folder: {_abs(dataset)}. --dataset is {FORMS}. "
                       f"Received: dataset={dataset!r}")
    return DatasetSpec(TFDS, dataset)


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))

