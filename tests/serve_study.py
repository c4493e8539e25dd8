"""A small study with a ``human`` system, and its ``oddoneout serve`` process on loopback (tests of the server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: Secrets of the test servers (each at least 32 characters, the two different).
SECRET = "test-secret-" + "s" * 40
SALT = "test-salt-" + "p" * 40
ENV = {
    **os.environ,
    "ODDONEOUT_PROGRESS": "0",
    "PYTHONUNBUFFERED": "1",
    "ODDONEOUT_SERVE_SECRET": SECRET,
    "ODDONEOUT_PARTICIPANT_SALT": SALT,
}
#: Every caption holds markup, so any trial shows whether text is escaped.
CAPTION = '<img src=x onerror="document.title=1"> <b>{item}</b> & </script>'
ITEMS = [f"item{i:02d}" for i in range(12)]


def write_study(
    folder: Path,
    n_triplets: int = 8,
    n_items: int = len(ITEMS),
    media_paths: dict[str, str] | None = None,
    triplets: str = "",
    trial_type: str = "",
    **human: object,
) -> Path:
    """A config over ``n_items`` captioned items (:data:`ITEMS` first) with one ``human`` system ``people``.

    ``media_paths`` gives items a ``media_path`` in the stimulus table; ``triplets`` names a list of
    triplets to ask (``[design] triplets``) instead of ``n_triplets`` random ones; ``trial_type`` the
    design's trial type (``"anchor"``, ``"ranked:3:2"``; default odd-one-out).
    """
    folder.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    items = [f"item{i:02d}" for i in range(n_items)]
    table = pd.DataFrame({"item_id": items, "caption": [CAPTION.format(item=item) for item in items]})
    if media_paths is not None:
        table["media_path"] = [media_paths.get(item) for item in items]
    table.to_csv(folder / "stimuli.csv", index=False)
    listed = f"triplets = {json.dumps(triplets)}\n" if triplets else ""
    if trial_type:
        listed += f"trial_type = {json.dumps(trial_type)}\n"
    settings = {"trials_per_session": 3, "practice_trials": 2, "lease_seconds": 600.0, **human}
    # a JSON string (non-ASCII kept as it is) is a TOML basic string
    table = "\n".join(f"{key} = {json.dumps(v, ensure_ascii=False) if isinstance(v, (str, bool)) else repr(v)}"
                      for key, v in settings.items())  # fmt: skip
    config = folder / "study.toml"
    config.write_text(
        f"""[study]
name = "people-test"
seed = 1

[stimuli]
source = "stimuli.csv"

[design]
n_triplets = {n_triplets}
{listed}repeated_triplets = 0
exhaustive_items = 0

[systems.people]
agent = "human"
{table}
"""
    )
    return config


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(config: Path, out: Path, port: int, *extra: str) -> list[str]:
    """The ``oddoneout serve`` command line."""
    return [sys.executable, "-m", "oddoneout.cli", "serve", str(config), "--out", str(out), "--port", str(port), *extra]


class Server:
    """``oddoneout serve`` in a subprocess, ready once it answers ``/healthz``.

    Parameters
    ----------
    config, out : Path
        The study config and folder.
    port : int, optional
        Default: a free port.
    """

    def __init__(self, config: Path, out: Path, port: int | None = None, env: dict | None = None) -> None:
        self.config, self.out = config, out
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = out.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self._log = open(self.log, "w")
        self.process = subprocess.Popen(
            serve_command(config, out, self.port), stdout=self._log, stderr=subprocess.STDOUT, env=env or ENV
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}): {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise AssertionError(f"the server did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``signum``, wait for the exit; the exit status."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signum)
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._log.close()

    def output(self) -> str:
        """What the server printed."""
        return self.log.read_text()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop(signal.SIGKILL)


def store_path(out: Path) -> Path:
    """The served system's store."""
    return out / "triplets" / "people.sqlite"


def snapshot(path: Path) -> dict[str, list]:
    """Every row of every table of the store (read-only, beside the running server)."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


def rows(path: Path, sql: str) -> list[tuple]:
    """The rows of one read-only query of the store."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return connection.execute(sql).fetchall()
