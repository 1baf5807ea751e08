"""What a data config amounts to: its `DatasetInfo` (kept in the model dir), how its test split
was made, the slices of its train split that training and validation read, and the early check
that `--dataset` names something.

`validation_examples` > 0 holds the last N images of the train split out of training (never in
`training_split`) for the per-epoch evaluation, so settings chosen on those numbers have not
seen test data.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nfi_tf.datasets import registry, splits
from nfi_tf.datasets.splits import Split
from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.config import DataConfig


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    train_size: int
    test_size: int


def load_info(cfg: DataConfig, download: bool = True) -> DatasetInfo:
    src = registry.open_source(cfg, download)
    return DatasetInfo(
        name=cfg.dataset,
        image_shape=tuple(src.image_shape),  # type: ignore[arg-type]
        num_classes=int(src.num_classes),
        class_names=tuple(src.class_names),
        train_size=src.sizes[Split.TRAIN],
        test_size=src.sizes[Split.TEST],
    )


def split_note(cfg: DataConfig, download: bool = True) -> str | None:
    """How the test split was made when the dataset has none of its own (None when it has)."""
    return registry.open_source(cfg, download).held_out


def require_known_dataset(name: str) -> None:
    """Fail first on a dataset that cannot exist (an unknown tfds name, a missing folder or
    file), before any other setting is checked."""
    spec = registry.parse(name)
    if spec.source.check_known:
        spec.source.check_known(spec)


def training_split(cfg: DataConfig, download: bool = True) -> str:
    """The split spec of the training images: the first `train_examples` of the train
    split (default: all), never reaching into its last `validation_examples` images."""
    v = cfg.validation_examples
    if not v:
        return splits.first(Split.TRAIN, cfg.train_examples)
    size = registry.open_source(cfg, download).sizes[Split.TRAIN]
    available = size - v
    if available < 1:
        raise NfiError(f"validation_examples must leave training images: the train split of "
                       f"{cfg.dataset!r} has {size}. Received: validation_examples={v}")
    n = available if cfg.train_examples is None else cfg.train_examples
    if n > available:
        raise NfiError(f"train_examples + validation_examples must be <= {size}, the size of the "
                       f"train split of {cfg.dataset!r} (the validation images are its last "
                       f"{v}). Received: train_examples={n}, validation_examples={v}")
    return f"train[:{n}]"


def validation_split(cfg: DataConfig, download: bool = True) -> str:
    """The split spec of the validation images: the last `validation_examples` of the
    train split, disjoint from `training_split` (which checks that they fit)."""
    v = cfg.validation_examples
    if v <= 0:
        raise NfiError(f"no validation split was asked for. Received: validation_examples={v}")
    training_split(cfg, download)
    size = registry.open_source(cfg, download).sizes[Split.TRAIN]
    return f"train[{size - v}:]"
