"""One exception type for every user-facing error, so each CLI can print one line and exit.

`NfiError` is a `ValueError`: Python callers catch bad arguments the way they do for Keras,
absl and numpy; the commands print its message as one line and exit 2.
"""


class NfiError(ValueError):
    """A bad input or an unusable file: the message says what was received and how to fix it."""


class DataUnavailableError(NfiError):
    """The dataset is neither on disk nor downloadable."""


class TrainingDivergedError(NfiError):
    """A non-finite loss: training stops, the last good checkpoint stays."""


def check(ok: bool, message: str) -> None:
    """Raise `NfiError(message)` unless `ok`: the one-line validator of every config."""
    if not ok:
        raise NfiError(message)
