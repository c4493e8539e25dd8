"""Exceptions raised by oddoneout."""


class OddoneoutError(Exception):
    """Base class of every error raised on purpose by oddoneout."""


class InputError(OddoneoutError, ValueError):
    """Bad input: a missing or malformed file, an unknown id, an out-of-range index, a NaN.

    The message always names the file, row, column or id at fault.
    """


class FitWarning(RuntimeWarning):
    """A fitted model that should not be published as it is (worse than chance, empty, or not sparse);
    the message names the likely fix."""
