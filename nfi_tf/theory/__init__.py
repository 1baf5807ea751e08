"""Section 4: the lower bound on the number of heads (eq. 21), in `bound.py`.

`python -m nfi_tf.theory` runs `__main__.py`, which hands over to the command layer.
"""

from nfi_tf.theory.bound import (
    TABLE_ACCURACIES,
    TABLE_SIZES,
    TheoryConfig,
    heads_bound,
    min_heads,
    report,
    table,
)

__all__ = ["TABLE_ACCURACIES", "TABLE_SIZES", "TheoryConfig", "heads_bound", "min_heads", "report",
           "table"]
