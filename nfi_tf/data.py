"""Image-classification data as float32 images in [0, 1], from any registered source: the
DataConfig-facing functions the rest of the library calls, gathered from `nfi_tf.datasets`.

`--dataset` names a source (`nfi_tf.datasets.registry`): a tensorflow-datasets name,
`folder:PATH` (one subfolder of PNG/JPEG images per class, or PATH/train and PATH/test holding
them), `PATH.npz` (arrays x, y, optionally x_test, y_test), or any source registered with
`registry.register`. Every source is seen through two logical splits, "train" and "test"
(`nfi_tf.datasets.splits`; `split_note` says how a test split was made for a set without one);
`image_size` resizes every image to a square.

    load_info, DatasetInfo, split_note, require_known_dataset   nfi_tf.datasets.info
    training_split, validation_split                             nfi_tf.datasets.info
    TrainStream (deterministic, resumable training epochs)       nfi_tf.datasets.train_stream
    load_arrays, eval_dataset, validation_dataset,
    epoch_eval_dataset (evaluation: first N images, in order)    nfi_tf.datasets.eval_data
    to_float, uint8_to_float                                     nfi_tf.datasets.pixels
"""

from __future__ import annotations

from nfi_tf.datasets.eval_data import (
    epoch_eval_dataset,
    eval_dataset,
    load_arrays,
    validation_dataset,
)
from nfi_tf.datasets.info import (
    DatasetInfo,
    load_info,
    require_known_dataset,
    split_note,
    training_split,
    validation_split,
)
from nfi_tf.datasets.pixels import to_float, uint8_to_float
from nfi_tf.datasets.train_stream import TrainStream

__all__ = ["DatasetInfo", "TrainStream", "epoch_eval_dataset", "eval_dataset", "load_arrays",
           "load_info", "require_known_dataset", "split_note", "to_float", "training_split",
           "uint8_to_float", "validation_dataset", "validation_split"]
