"""A small whole study run from the command line, killed, resumed and compared (tests and benchmarks/faults.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

#: The built-in synthetic study made small: every stage runs (about 20 s on 2 cores).
SMALL_SETTINGS = (
    "stimuli.n_items=60",
    "stimuli.n_subjects=1",
    "stimuli.voxels_per_roi=20",
    "design.n_triplets=6000",
    "design.repeated_triplets=100",
    "design.exhaustive_items=10",
    "embedding.n_dims=20",
    "embedding.l1=[0.02, 0.04]",
    "evaluation.n_bootstrap=50",
    "interpret.interactive=false",
)
ENV = {**os.environ, "ODDONEOUT_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}


def run_command(out: Path, *extra: str, settings: tuple[str, ...] = SMALL_SETTINGS) -> list[str]:
    """``oddoneout run synthetic --out OUT`` with the small study's settings."""
    command = [sys.executable, "-m", "oddoneout.cli", "run", "synthetic", "--out", str(out)]
    for setting in settings:
        command += ["--set", setting]
    return command + list(extra)


def run(out: Path, *extra: str, **options) -> subprocess.CompletedProcess:
    """Run the small study to the end (or its error)."""
    return subprocess.run(run_command(out, *extra), capture_output=True, text=True, env=ENV, **options)


def headings(log: Path) -> list[str]:
    """The stage headings a run printed so far (``"collect mllm"``, ``"report"``...)."""
    return [line[2:].strip() for line in log.read_text().splitlines() if line.startswith("> ")]


def run_killed(out: Path, log: Path, heading: str, delay: float) -> str:
    """Start the small study and SIGKILL it ``delay`` seconds after it prints the stage heading ``heading``.

    Returns the heading of the stage the kill fell in ("" when the run ended first).
    """
    with open(log, "w") as stderr:  # with its stage headings, to find the stage and tell where the kill fell
        process = subprocess.Popen(
            run_command(out), stdout=subprocess.DEVNULL, stderr=stderr, env={**ENV, "ODDONEOUT_PROGRESS": "1"}
        )
        try:
            while heading not in headings(log):
                if process.poll() is not None:
                    return ""
                time.sleep(0.005)
            process.wait(timeout=delay)
            return ""
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return headings(log)[-1]


def stored_answers(out: Path) -> pd.Series:
    """Every stored choice of every system's store, indexed by (system, design, triplet_index, ordering, repeat)."""
    frames = []
    for path in sorted((out / "triplets").glob("*.sqlite")):
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            query = "SELECT design, triplet_index, ordering, repeat, choice FROM judgments"
            frame = pd.read_sql_query(query, connection)
        finally:
            connection.close()
        frames.append(frame.assign(system=path.stem))
    keys = ["system", "design", "triplet_index", "ordering", "repeat"]
    if not frames:
        return pd.Series([], index=pd.MultiIndex.from_tuples([], names=keys), dtype=int, name="choice")
    return pd.concat(frames).set_index(keys)["choice"].fillna(-1).astype(int).sort_index()


#: The fields of a system's cost that equal inputs repeat (the times are this run's own).
REPEATED_COST = ("judgments", "requests", "retries", "tokens", "tokens_in", "tokens_out", "images", "price_usd")


def summary(out: Path) -> dict:
    """``summary.json`` of a finished run, each system's cost reduced to :data:`REPEATED_COST`."""
    result = json.loads((out / "summary.json").read_text())
    result["cost"] = {name: {k: record[k] for k in REPEATED_COST} for name, record in result["cost"].items()}
    return result


def compare(before: pd.Series, after: pd.Series, reference: pd.Series) -> dict[str, int]:
    """Judgments stored before a kill that a resume lost or changed, duplicated keys, answers unlike the reference's."""
    common = after.index.intersection(before.index)
    return {
        "stored_at_kill": int(len(before)),
        "lost": int(len(before.index.difference(after.index))),
        "changed": int((before.reindex(common).to_numpy() != after.reindex(common).to_numpy()).sum()),
        "duplicated": int(after.index.duplicated().sum()),
        "missing_vs_reference": int(len(reference.index.difference(after.index))),
        "different_answers": int((after.reindex(reference.index) != reference).sum()),
    }


def wait_for_lock(out: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the run ``process`` holds the folder's writer lock."""
    from oddoneout.folder_lock import holder

    deadline = time.monotonic() + timeout
    while not holder(out / ".oddoneout.lock").get("running"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the run did not take the lock (exit {process.poll()})")
        time.sleep(0.05)
