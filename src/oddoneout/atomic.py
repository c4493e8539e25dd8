"""Atomic file writes: a reader sees the previous complete file or the new complete file, never half of one.

Every file the package writes into a study folder goes through :func:`atomic_path` (or one of
the helpers built on it): the writer fills a private temporary file in the target's own folder
(so the final rename stays on one filesystem), the data is flushed to disk, and only then is the
temporary renamed onto the target with :func:`os.replace`, which is atomic on POSIX and Windows.
A writer that raises, or a process killed midway, leaves the target untouched (the last complete
version, or no file); a write that fails for lack of room raises :class:`~oddoneout.errors.StorageError`
naming the file.

Temporary names are unique per write (:func:`tempfile.mkstemp`), so two threads or processes
writing the same file at once never share one: each rename installs one complete version and
the last rename wins. They look like ``.<name>.<random>.tmp`` (:data:`TEMP_SUFFIX`): hidden, and
with a suffix no reader of a study folder looks for, so a temporary that a killed process left
behind is ignored. A write removes only its own temporary, never another writer's.

Note that :func:`numpy.save` and :func:`numpy.savez_compressed` append ``.npy``/``.npz`` to a
*path* without that suffix: give them the open file of :func:`atomic_open` instead.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from oddoneout.errors import WRITE_AGAIN, StorageError

__all__ = ["TEMP_SUFFIX", "atomic_open", "atomic_path", "out_of_room", "write_bytes", "write_text"]

#: Suffix of every temporary file of :func:`atomic_path` (after ``.<target name>.<random>``).
TEMP_SUFFIX = ".tmp"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permissions of a newly written file: what :func:`open` would give (``0o666`` less the umask),
#: not the ``0o600`` of :func:`tempfile.mkstemp`. The umask is read once, at import, because
#: reading it means setting it, which is not thread-safe.
_NEW_FILE_MODE = 0o666 & ~_read_umask()


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable too (POSIX; folders cannot be opened on Windows)."""
    if os.name == "nt":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(descriptor)


_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def out_of_room(exc: BaseException) -> bool:
    """Whether a write failed for lack of room (a full disk, a quota, a file size limit).

    Libraries that write through their own I/O layer (pyarrow) raise an :class:`OSError`
    without ``errno``, so the operating system's message is matched too.
    """
    if getattr(exc, "errno", None) in _NO_ROOM:
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in _NO_ROOM) or "database or disk is full" in text


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path`` in one atomic rename.

    Parameters
    ----------
    path : str or Path
        The file to write. Its parent folders are created.

    Yields
    ------
    Path
        An empty file beside ``path`` named ``.<name>.<random>.tmp``, private to this write. Write
        it (any writer that takes a path: open it, or let a library overwrite it).

    Raises
    ------
    BaseException
        Whatever the body raises, after the temporary file is removed; ``path`` is then left as it
        was. An :class:`OSError` from the rename itself, likewise.

    Notes
    -----
    On success the temporary is given the permissions of a newly created file (``0o666`` less
    the umask), flushed to disk with :func:`os.fsync`, then renamed onto ``path`` with
    :func:`os.replace`; the folder is fsynced afterwards so the rename survives a crash.

    Examples
    --------
    >>> with atomic_path(folder / "table.parquet") as temporary:  # doctest: +SKIP
    ...     pyarrow.parquet.write_table(table, temporary)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _NEW_FILE_MODE)
        _fsync_file(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if out_of_room(exc):
            raise StorageError(f"{path}: could not be written ({exc}); {WRITE_AGAIN}") from exc
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


@contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """An open file that becomes ``path`` when the block ends without an exception.

    Parameters
    ----------
    path : str or Path
        The file to write (parent folders are created).
    mode : str
        ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise; the default) or ``"wb"``.
    encoding, newline : str, optional
        As for :func:`open` (text modes only).

    Yields
    ------
    file object
        The temporary file of :func:`atomic_path`, open for writing.

    Raises
    ------
    ValueError
        If ``mode`` does not write a whole new file (reading, appending or updating modes).
    """
    if not mode.startswith("w") or "+" in mode:
        raise ValueError(f"atomic_open writes a whole new file: mode must be 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding=encoding, newline=newline) as handle:
            yield handle


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)
