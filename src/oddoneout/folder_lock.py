"""One writer per study folder: an OS file lock held while a command writes the folder.

Every command that runs stages into a study folder (``run``, ``collect``, ``demo``: all through
:func:`~oddoneout.pipeline.run_study`) holds :func:`writer_lock` on the folder's lock file for
its whole run. A second
writer stops at once with one line naming the holder (pid, host, command, start time), which
the holder records in the lock file. The lock is an advisory ``flock``: the operating system
releases it when its process ends, however it ends, so a lock file left by a killed process
is stale by construction and the next writer takes it over (and says whose it was).
Read-only commands (``status``, ``report``) do not take it. Processes meant to share one
store (Ray workers, the concurrent runner) never open the folder themselves: they hand their
answers to the one process that holds the lock and owns the store.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator

from oddoneout.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderBusyError", "holder", "writer_lock"]


class FolderBusyError(InputError):
    """Another process holds the study folder's writer lock."""


def holder(lock_path: str | Path) -> dict[str, Any]:
    """What the last (or current) holder recorded in a lock file: pid, host, command, started_at."""
    try:
        return json.loads(Path(lock_path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "another process (it has not recorded itself yet)"
    return (
        f"pid {record.get('pid')} on {record.get('host')} ({record.get('command')!r}, since {record.get('started_at')})"
    )


def _alive(record: dict[str, Any]) -> bool | None:
    """Whether the recorded holder still runs (None when it ran on another host or recorded nothing)."""
    if record.get("host") != socket.gethostname() or not isinstance(record.get("pid"), int):
        return None
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def writer_lock(lock_path: str | Path, command: str | None = None) -> Iterator[dict[str, Any]]:
    """Hold the writer lock of a study folder for the ``with`` block.

    Parameters
    ----------
    lock_path : path
        The folder's lock file (:attr:`~oddoneout.study_folder.StudyFolder.lock`); its folder
        must exist.
    command : str, optional
        What is writing, recorded for the message a second writer gets (default: the command line).

    Yields
    ------
    dict
        ``{"taken_over": record}`` with the record of the killed process whose lock was taken
        over, or ``{}`` when the lock file was new or left by a clean exit.

    Raises
    ------
    FolderBusyError
        When another process holds the lock.
    """
    path = Path(lock_path)
    handle: IO[str] = open(path, "a+", encoding="utf-8")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusyError(
                    f"{path.parent} is being written by {_describe(holder(path))}: wait for it to finish or stop it"
                ) from None
        previous = holder(path)
        info = {"taken_over": previous} if previous.get("running") and _alive(previous) is not True else {}
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "running": True,
        }
        _rewrite(handle, record)
        try:
            yield info
        finally:
            _rewrite(handle, {**record, "running": False})
    finally:
        handle.close()  # closing the descriptor releases the flock


def _rewrite(handle: IO[str], record: dict[str, Any]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record, sort_keys=True))
    handle.flush()
