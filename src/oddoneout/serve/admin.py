"""The experimenter's view of a served system: its admin token, and the summary the admin page shows.

The admin page (``GET /admin``) and its data (``GET /api/admin/summary``) exist only when the
environment variable :data:`ADMIN_ENV` holds a token: never in the study config, never logged. A
request carries it as ``Authorization: Bearer <token>`` and it is compared in constant time.

The summary is read through its own read-only connection to the store (beside the server's writer,
WAL), so it can be computed off the event loop; the per-participant measures and exclusion verdicts
are those of :mod:`oddoneout.collect.quality` (one owner for each formula).
"""

from __future__ import annotations

import hmac
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from oddoneout.collect.quality import judged_sessions
from oddoneout.collect.store import connect_read_only
from oddoneout.errors import InputError
from oddoneout.serve.tokens import MIN_SECRET_CHARS

if TYPE_CHECKING:
    from oddoneout.agents.registry import HumanSettings

#: Environment variable holding the admin token (unset: no admin page).
ADMIN_ENV = "ODDONEOUT_ADMIN_TOKEN"
#: The windows of the answer rates, in minutes.
RATE_WINDOWS = (5, 60)


@dataclass(frozen=True, repr=False)
class AdminKey:
    """The admin token of one server (``repr`` shows nothing of it)."""

    token: bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, others: Sequence[str] = ()) -> AdminKey | None:
        """The token of :data:`ADMIN_ENV`, or ``None`` when it is unset or empty (the admin page is off).

        Parameters
        ----------
        environ : mapping, optional
            Default: ``os.environ``.
        others : sequence of str
            The server's other secrets: the admin token must differ from each.

        Raises
        ------
        InputError
            When the token is shorter than :data:`~oddoneout.serve.tokens.MIN_SECRET_CHARS` or equals another secret.
        """
        value = (os.environ if environ is None else environ).get(ADMIN_ENV, "")
        if not value:
            return None
        if len(value) < MIN_SECRET_CHARS:
            raise InputError(f"${ADMIN_ENV} must be at least {MIN_SECRET_CHARS} characters (or unset: no admin page)")
        if value in others:
            raise InputError(f"${ADMIN_ENV} must differ from the server's other secrets")
        return cls(value.encode())

    def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries this token (as ``Bearer <token>``)."""
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token)


def _iso(unix: float) -> str:
    """A Unix time as the lease book writes its times (ISO 8601, UTC, microseconds): comparable as text."""
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="microseconds")


def _number(value: Any) -> float | None:
    """A float for JSON (``None`` for NaN or a missing value)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _progress(connection: sqlite3.Connection, design_sizes: Mapping[str, int], now: float) -> dict[str, Any]:
    stored = dict(connection.execute("SELECT design, count(*) FROM judgments GROUP BY design").fetchall())
    designs = [
        {"name": name, "answered": int(stored.get(name, 0)), "total": int(size)} for name, size in design_sizes.items()
    ]
    answered, total = sum(d["answered"] for d in designs), sum(d["total"] for d in designs)
    (leased,) = connection.execute("SELECT count(*) FROM serve_leases WHERE expires_at > ?", (now,)).fetchone()
    return {
        "answered": answered,
        "total": total,
        "leased": int(leased),
        "fraction": answered / total if total else None,
        "designs": designs,
    }


def _rates(connection: sqlite3.Connection, now: float) -> dict[str, Any]:
    rates = {}
    for minutes in RATE_WINDOWS:
        query = "SELECT count(*) FROM serve_responses WHERE received_at >= ?"
        (count,) = connection.execute(query, (_iso(now - 60 * minutes),)).fetchone()
        rates[f"last_{minutes}_min"] = {"answers": int(count), "per_minute": count / minutes}
    return rates


def _active_sessions(connection: sqlite3.Connection, now: float, lease_seconds: float) -> set[str]:
    """Unfinished sessions that hold a live lease or answered (a trial or a catch trial) within the lease time."""
    since = _iso(now - lease_seconds)
    rows = connection.execute(
        """
        SELECT session_id FROM serve_sessions WHERE finished_at IS NULL AND (
            session_id IN (SELECT session_id FROM serve_leases WHERE expires_at > ?)
            OR session_id IN (SELECT session_id FROM serve_responses WHERE received_at >= ?)
            OR session_id IN (SELECT session_id FROM serve_catch WHERE received_at >= ?))
        """,
        (now, since, since),
    )
    return {str(session_id) for (session_id,) in rows}


def admin_summary(
    store_path: str | Path,
    design_sizes: Mapping[str, int],
    settings: HumanSettings,
    now: float | None = None,
) -> dict[str, Any]:
    """What the admin page shows of a served system's store, as JSON-ready values (no NaN).

    Parameters
    ----------
    store_path : path
        The system's store (read through a read-only connection of its own).
    design_sizes : mapping of str to int
        Trials of each served design (:class:`~oddoneout.collect.designs.TripletDesign` lengths).
    settings : HumanSettings
        The system's settings: ``lease_seconds`` and the exclusion rules.
    now : float, optional
        Unix time (default: now).

    Returns
    -------
    dict
        ``progress``: ``answered`` and ``total`` trials of the designs (also by design), ``leased``
        (trials held by a live lease now), ``fraction``; ``rates``: trial answers (catch trials
        apart) in the last 5 and 60 minutes and the answers per minute over each; ``sessions``:
        ``total``, ``active`` (unfinished, holding a live lease or answering within the lease
        time), ``idle`` (unfinished, neither), ``finished``, ``excluded``; ``rules``: the exclusion
        rules; ``participants``: one record per session, in order of creation, with the salted hash
        of the participant's id, answers, median response time, share of too-fast answers, choice
        rate by shown position and its chi-square p, catch-trial accuracy, and whether (and why)
        the exclusion rules leave it out (:func:`~oddoneout.collect.quality.judged_sessions`).
    """
    now = time.time() if now is None else now
    connection = connect_read_only(Path(store_path))
    try:
        progress = _progress(connection, design_sizes, now)
        rates = _rates(connection, now)
        active = _active_sessions(connection, now, settings.lease_seconds)
    finally:
        connection.close()
    judged = judged_sessions(store_path, settings)
    # by shown position; null where none can be chosen (the reference of anchor and ranked trials)
    rate_columns = [c for c in judged.columns if str(c).startswith("choice_rate_")]
    participants = [
        {
            "session_id": str(session_id),
            "participant": None if pd.isna(row["participant"]) else str(row["participant"]),
            "platform": row["platform"],
            "n_trials": int(row["n_trials"]),
            "n_answered": int(row["n_answered"]),
            "finished": bool(row["finished"]),
            "active": str(session_id) in active,
            "median_rt_ms": _number(row["median_rt_ms"]),
            "fast_fraction": _number(row["fast_fraction"]),
            "choice_rate": [_number(row[name]) for name in rate_columns],
            "position_p": _number(row["position_p"]),
            "n_catch": int(row["n_catch"]),
            "catch_accuracy": _number(row["catch_accuracy"]),
            "excluded": bool(row["excluded"]),
            "exclusion_reason": str(row["exclusion_reason"]),
        }
        for session_id, row in judged.iterrows()
    ]
    finished = sum(p["finished"] for p in participants)
    n_active = sum(p["active"] for p in participants)
    return {
        "generated_at": _iso(now),
        "progress": progress,
        "rates": rates,
        "sessions": {
            "total": len(participants),
            "active": n_active,
            "idle": len(participants) - finished - n_active,
            "finished": finished,
            "excluded": sum(p["excluded"] for p in participants),
        },
        "rules": {
            "min_rt_ms": settings.min_rt_ms,
            "exclude_max_fast_fraction": settings.exclude_max_fast_fraction,
            "exclude_min_catch_accuracy": settings.exclude_min_catch_accuracy,
        },
        "participants": participants,
    }
