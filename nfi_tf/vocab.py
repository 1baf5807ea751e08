"""The project's small vocabularies as types: each member's text is written here and only here.

A member is a `str` (enum.StrEnum), so it is its own text wherever text is needed: JSON
(`config.json`, `eval.json`), flag values, file names, `==` against a string read from a file.
Code compares and passes members (`method == Method.NFI`), never the literal; the literal of a
member written anywhere else in the library is a test failure (tests/test_layers.py).

    Method  what a model is: the paper's method, the TRADES baseline, or any other classifier
            (evaluate_classifier's subjects; not a training method)
    Norm    the threat model's norm

Other vocabularies live with the concept they name: output names in `nfi_tf/outputs.py`, report
columns and route-aware variants in `nfi_tf/evaluation/vocab.py`, export precisions in
`export/precisions/`.

Plain Python (no TensorFlow), so configs and flags import it cheaply.
"""

from __future__ import annotations

import enum

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: the same behaviour, spelled out
    class StrEnum(str, enum.Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, spec: str) -> str:
            return str.__format__(str(self), spec)


class _Text(StrEnum):
    """Its repr is its text too ('nfi', not <Method.NFI: 'nfi'>): a message showing a stored or
    received value with !r reads as it did when the value was a plain string."""

    def __repr__(self) -> str:
        return repr(self.value)


class Method(_Text):
    NFI = "nfi"  # the paper's method: triple head and routing
    TRADES = "trades"  # the baseline: one trade-off head
    CLASSIFIER = "classifier"  # any other classifier under evaluation (logits only)

    @classmethod
    def trainable(cls) -> tuple[Method, ...]:
        """The methods `python -m nfi_tf.train` trains."""
        return (cls.NFI, cls.TRADES)

    @property
    def title(self) -> str:
        """How reports name it."""
        return _METHOD_TITLES.get(self, self.value)


class Norm(_Text):
    LINF = "linf"
    L2 = "l2"

    @property
    def title(self) -> str:
        """How reports print it."""
        return _NORM_TITLES[self]


_NORM_TITLES = {Norm.LINF: "L-inf", Norm.L2: "L2"}
_METHOD_TITLES = {Method.TRADES: "TRADES"}


def parse(kind: type[StrEnum], value, what: str) -> StrEnum:
    """`value` as a member of `kind`, or an NfiError naming the choices and the value received."""
    from nfi_tf.errors import NfiError

    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise NfiError(f"{what} must be one of {choices}. Received: {what}={value}") from None
