"""The logical splits every source is seen through, and their slices.

Every source has two logical splits, "train" and "test" (a source without a test split of its
own makes one: `DataSource.held_out` says how). A split spec may be sliced, `train[a:b]`, as
tfds' are. Which slices a run trains and validates on: `nfi_tf.datasets.info`.
"""

from __future__ import annotations

import re

from nfi_tf.errors import NfiError
from nfi_tf.vocab import StrEnum


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"
    # The last `validation_examples` of the train split (and tfds' own validation split, which
    # stands in for a missing test split).
    VALIDATION = "validation"


_SPEC = re.compile(r"^(train|test)(?:\[(\d*):(\d*)\])?$")


def parse(split: str, sizes: dict[Split, int]) -> tuple[Split, int, int]:
    """'train[a:b]' -> (Split.TRAIN, a, b), clipped to the split's size in `sizes`."""
    m = _SPEC.match(split)
    if not m:
        raise NfiError(f"split must be train or test, optionally sliced [a:b] with integers. "
                       f"Received: split={split!r}")
    name = Split(m.group(1))
    size = sizes[name]
    a = int(m.group(2)) if m.group(2) else 0
    b = int(m.group(3)) if m.group(3) else size
    return name, min(a, size), min(b, size)


def first(name: str, n: int | None) -> str:
    """The spec of the first `n` examples of split `name` (all of them when n is None)."""
    return name if n is None else f"{name}[:{int(n)}]"
