"""Exceptions raised by oddoneout."""


class OddoneoutError(Exception):
    """Base class of every error raised on purpose by oddoneout."""


class InputError(OddoneoutError, ValueError):
    """Bad input: a missing or malformed file, an unknown id, an out-of-range index, a NaN.

    The message always names the file, row, column or id at fault.
    """


class StorageError(OddoneoutError, OSError):
    """A file could not be written (a full disk, a file size limit): what was written before is kept.

    The message names the file and says that running the same command again, once there is room,
    resumes where it stopped.
    """


#: What every :class:`StorageError` ends with.
WRITE_AGAIN = "everything written before is kept: make room and run the same command again"


class FitWarning(RuntimeWarning):
    """A fitted model that should not be published as it is (worse than chance, empty, or not sparse);
    the message names the likely fix."""
