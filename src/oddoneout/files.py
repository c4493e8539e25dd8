"""Reading Parquet, ``.npy`` and ``.npz`` files, with one clear error for a file that cannot be read.

Every Parquet, ``.npy`` and ``.npz`` file oddoneout reads goes through these functions, so a file
that is garbled, truncated or of another format always fails the same way: an
:class:`~oddoneout.errors.UnreadableFile` naming the file, what is wrong with it and what to do,
never a pyarrow or NumPy traceback. A missing file is not "unreadable": its
:class:`FileNotFoundError` passes through (callers name what they expected first).
"""

from __future__ import annotations

import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from oddoneout.errors import OddoneoutError, UnreadableFile

__all__ = ["NPY_MAGIC", "ZIP_MAGIC", "read_npy", "open_npz", "read_parquet", "read_parquet_schema"]

#: The first bytes of every ``.npy`` file.
NPY_MAGIC = b"\x93NUMPY"
#: The first bytes of a ``.npz`` file (a zip archive).
ZIP_MAGIC = b"PK\x03\x04"

#: What pyarrow raises for a file that is not (or no longer) Parquet.
_PARQUET_FAILURES = (pa.ArrowException, OSError, ValueError)
#: What NumPy and the zip module raise for a garbled or truncated ``.npy``/``.npz`` file.
_NUMPY_FAILURES = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@contextmanager
def _failures_as_unreadable(
    path: Path, kind: str, failures: tuple[type[BaseException], ...], remedy: str | None
) -> Iterator[None]:
    """Turn ``failures`` raised in the block into :class:`UnreadableFile` ("not a readable KIND file (why)")."""
    try:
        yield
    except (FileNotFoundError, OddoneoutError):  # absent: the caller's message; ours (InputError is a ValueError)
        raise
    except failures as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the library wrote
        raise UnreadableFile(path, f"not a readable {kind} file ({reason})", remedy) from exc


def _require_magic(path: Path, kind: str, magic: bytes, problem: str, remedy: str | None) -> None:
    """Refuse a file that does not start with ``magic`` (``problem`` says what it then is not)."""
    with _failures_as_unreadable(path, kind, (OSError,), remedy), path.open("rb") as file:
        start = file.read(len(magic))
    if start != magic:
        raise UnreadableFile(path, problem, remedy)


def read_parquet(path: str | Path, columns: Sequence[str] | None = None, remedy: str | None = None) -> pa.Table:
    """A Parquet file's table (``columns`` only, if given).

    Parameters
    ----------
    path : path
        The file.
    columns : sequence of str, optional
        Read only these columns.
    remedy : str, optional
        What the error says to do (see :class:`~oddoneout.errors.UnreadableFile`).

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    UnreadableFile
        If the file is not a readable Parquet file (garbled, truncated, another format).
    FileNotFoundError
        If there is no such file.
    """
    path = Path(path)
    with _failures_as_unreadable(path, "Parquet", _PARQUET_FAILURES, remedy):
        return pq.read_table(path, columns=None if columns is None else list(columns))


def read_parquet_schema(path: str | Path, remedy: str | None = None) -> pa.Schema:
    """A Parquet file's schema (with its metadata), read from the footer only; raises as :func:`read_parquet`."""
    path = Path(path)
    with _failures_as_unreadable(path, "Parquet", _PARQUET_FAILURES, remedy):
        return pq.read_schema(path)


def read_npy(path: str | Path, remedy: str | None = None) -> np.ndarray:
    """A ``.npy`` array, never unpickled.

    Parameters
    ----------
    path : path
        The file.
    remedy : str, optional
        What the error says to do (see :class:`~oddoneout.errors.UnreadableFile`).

    Returns
    -------
    ndarray

    Raises
    ------
    UnreadableFile
        If the file has no ``.npy`` header (text, random bytes, another format), holds pickled
        (object) data, or is garbled or truncated.
    FileNotFoundError
        If there is no such file.
    """
    path = Path(path)
    _require_magic(path, ".npy", NPY_MAGIC, "not a NumPy .npy file (no .npy header)", remedy)
    with _failures_as_unreadable(path, ".npy", _NUMPY_FAILURES, remedy):
        if _npy_dtype(path).hasobject:
            raise UnreadableFile(path, "holds pickled (object) data, which oddoneout never loads", remedy)
        return np.load(path, allow_pickle=False)


def _npy_dtype(path: Path) -> np.dtype:
    """The dtype a ``.npy`` file's header declares (read without loading the data)."""
    fmt = np.lib.format
    with path.open("rb") as file:
        version = fmt.read_magic(file)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        return read_header(file)[2]


@contextmanager
def open_npz(path: str | Path, remedy: str | None = None) -> Iterator[np.lib.npyio.NpzFile]:
    """``with open_npz(path) as arrays:`` reads a ``.npz`` archive's arrays lazily (``arrays[name]``), never unpickled.

    A failure to read the archive, or one of its arrays inside the block, raises
    :class:`~oddoneout.errors.UnreadableFile` naming the file; a missing array name stays a
    :class:`KeyError` for the caller to explain. Parameters as :func:`read_npy`.

    Raises
    ------
    UnreadableFile
        If the file is no zip archive, or is garbled or truncated.
    FileNotFoundError
        If there is no such file.
    """
    path = Path(path)
    _require_magic(path, ".npz", ZIP_MAGIC, "not a NumPy .npz file (no zip header)", remedy)
    with _failures_as_unreadable(path, ".npz", _NUMPY_FAILURES, remedy), np.load(path, allow_pickle=False) as arrays:
        yield arrays
