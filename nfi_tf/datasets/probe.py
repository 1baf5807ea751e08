"""A dataset's image shape, cheaply, for deriving a preset (`nfi_tf.config.make_config`).

Reads one header (a folder's first image, an .npz array header, tfds' feature spec); the full
checks (mixed sizes, label ranges, empty splits) run when the data is loaded (`nfi_tf.data`).
"""

from __future__ import annotations

from nfi_tf.datasets import folder, npz, spec
from nfi_tf.errors import NfiError


def preset_shape(dataset: str, data_dir: str | None = None,
                 image_size: int | None = None) -> tuple[str, tuple[int | None, int | None, int]]:
    """(the canonical dataset name, (height, width, channels) of its images after
    `image_size`); height and width are None for a tfds set of variable-size images."""
    s = spec.parse(dataset)
    if s.kind == spec.FOLDER:
        h, w, c = folder.first_image_shape(s.path)
    elif s.kind == spec.NPZ:
        h, w, c = npz.image_shape(s.path)
    else:
        h, w, c = tfds_image_shape(s.name, data_dir)
    if image_size is not None:
        h = w = image_size
    return s.name, (h, w, c)


def tfds_image_shape(name: str, data_dir: str | None) -> tuple[int | None, int | None, int]:

    features = tfds_builder(name, data_dir).info.features
    image_key, _ = tfds_keys(name, features)
    h, w, c = features[image_key].shape
    return h, w, int(c or 3)


def tfds_builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NfiError(unknown_tfds(name)) from e


def unknown_tfds(name: str) -> str:
    return (f"unknown dataset {name!r}: not a tensorflow-datasets name (e.g. mnist, cifar10, "
            f"cifar100, svhn_cropped; the list: python -c 'import tensorflow_datasets as tfds; "
            f"print(tfds.list_builders())'), nor folder:PATH or PATH.npz")


def tfds_keys(name: str, features) -> tuple[str, str]:
    """(image feature, label feature) of a tfds set: its supervised keys, else image/label."""
    import tensorflow_datasets as tfds

    keys = dict(features.items()) if hasattr(features, "items") else {}
    image = next((k for k in ("image",) if k in keys), None) or next(
        (k for k, f in keys.items() if isinstance(f, tfds.features.Image)), None)
    label = next((k for k in ("label",) if k in keys), None) or next(
        (k for k, f in keys.items() if isinstance(f, tfds.features.ClassLabel)), None)
    if image is None or label is None or not isinstance(keys[label], tfds.features.ClassLabel):
        raise NfiError(f"dataset {name!r} is not an image classification dataset (needs an "
                       f"image feature and a class label; has {sorted(keys)}): pick a tfds "
                       f"image set, or pass folder:PATH or PATH.npz")
    return image, label
