"""Exceptions raised by oddoneout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What an :class:`UnreadableFile` message says to do when the reader knows nothing better.
DEFAULT_REMEDY = "re-run the stage or command that writes it, or delete it"


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


class UnreadableFile(InputError):
    """A file that is there but cannot be read as what it should be: garbled, truncated or of another format.

    The message is one line: ``"<path>: <problem>: <remedy>"``.

    Parameters
    ----------
    path : path
        The file.
    problem : str
        What is wrong with it, e.g. ``"not a readable Parquet file (magic bytes not found)"``.
    remedy : str, optional
        What to do about it. By default :data:`DEFAULT_REMEDY`; a study run replaces that
        default with the stage that writes the file (see :meth:`with_remedy`).
    """

    def __init__(self, path: str | Path, problem: str, remedy: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"{self.path}: {problem}: {remedy or DEFAULT_REMEDY}")

    def with_remedy(self, remedy: str) -> UnreadableFile:
        """The same error saying ``remedy`` instead."""
        return type(self)(self.path, self.problem, remedy)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (e.g. from a Ray worker), not from its message
        return type(self), (self.path, self.problem, self.remedy)


class FitWarning(RuntimeWarning):
    """A fitted model that should not be published as it is (worse than chance, empty, or not sparse);
    the message names the likely fix."""
