"""Helpers of the tests that run a collector in a subprocess, kill or interrupt it, and read its store."""

from __future__ import annotations

import importlib.util
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Callable


def stored_count(path: Path) -> int:
    """Judgments in the store at ``path``, read through a read-only connection (0 before it exists)."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return connection.execute("SELECT count(*) FROM judgments").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:  # not created yet
        return 0


def load_script(path: Path) -> ModuleType:
    """Import the collector script at ``path`` as a module (for its design, items and agent)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds; fail if the collector ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"collector exited early: {process.stderr.read().decode()}"
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"collector: {what} not reached in time")
        time.sleep(0.02)


def kill_once_stored(process: subprocess.Popen, path: Path, n_stored: int) -> int:
    """SIGKILL the collector ``process`` once its store at ``path`` holds ``n_stored`` judgments.

    Returns the number of judgments stored after the kill.
    """
    try:
        wait_for(lambda: stored_count(path) >= n_stored, process, f"{n_stored} stored trials")
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return stored_count(path)


def stop_with(process: subprocess.Popen, signum: int, timeout: float = 60) -> tuple:
    """Send ``signum`` to ``process`` and return its ``(stdout, stderr)`` once it has exited (killed if it hangs)."""
    try:
        process.send_signal(signum)
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interruptible() -> None:
    """``preexec_fn`` giving a child process the default SIGINT disposition, so Ctrl-C reaches it.

    A test run started in the background of a non-interactive shell (``cmd &``, ``nohup``) ignores
    SIGINT, its children inherit that, and Python then never raises KeyboardInterrupt in them.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
