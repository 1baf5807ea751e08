"""One exception type for every user-facing error, so each CLI can print one line and exit."""


class NfiError(Exception):
    """A bad input or an unusable file: the message says what was received and how to fix it."""


class DataUnavailableError(NfiError):
    """The dataset is neither on disk nor downloadable."""


class TrainingDivergedError(NfiError):
    """A non-finite loss: training stops, the last good checkpoint stays."""
