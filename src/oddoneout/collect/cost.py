"""Cost accounting of a collection: what a system's judgments took, what they cost, what the rest will cost.

Every figure comes from the system's store:

- per judgment (store format 3, :data:`~oddoneout.collect.judgment_rows.ADDED_IN_3`): tokens in
  and out (the server's ``usage.prompt_tokens``/``usage.completion_tokens``, or the local model's
  counts), the total (``tokens``), images sent, attempts (requests, retries included), start,
  finish and latency;
- per collecting call (the store's ``collection_runs`` table, written by the runners through
  :class:`RunMeter`): wall time, the collecting process's CPU seconds, and GPU seconds when the
  agent runs a local model on a GPU (``uses_gpu``; the time spent in its calls).

A figure that was not recorded is ``None``, never 0: the usage of a store written before format 3,
the CPU seconds of a store collected before the runs table (or sharded over Ray, whose workers
are not measured), GPU seconds of an agent that runs no local model on a GPU. The price comes from
the study's ``[cost]`` table (:class:`~oddoneout.config.sections.CostSettings`) and is ``None``
when a price it needs is not set or a quantity it prices is not known (:func:`price`).

:func:`estimate` projects a design's remaining trials at the per-judgment rates measured on the
judgments already stored (a pilot); it asks no agent.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from oddoneout.collect.store import TripletStore, connect_read_only, has_table, read_judgments, utc_now

#: The prices of a ``[cost]`` table (US dollars), each also a key of a ``[cost.systems.NAME]`` table
#: (:class:`~oddoneout.config.sections.CostSettings`).
PRICE_KEYS = (
    "usd_per_million_input_tokens",
    "usd_per_million_output_tokens",
    "usd_per_image",
    "usd_per_gpu_hour",
)

#: The store's table of collecting calls (one row per runner call).
RUNS_TABLE = "collection_runs"
_CREATE_RUNS = f"""
CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    runner TEXT NOT NULL,
    n_asked INTEGER NOT NULL,
    n_requests INTEGER,
    n_retries INTEGER,
    wall_s REAL NOT NULL,
    cpu_s REAL,
    gpu_s REAL
)
"""
#: The usage each price of :data:`PRICE_KEYS` multiplies, and its unit.
PRICED = {
    "usd_per_million_input_tokens": ("tokens_in", 1e6),
    "usd_per_million_output_tokens": ("tokens_out", 1e6),
    "usd_per_image": ("images", 1.0),
    "usd_per_gpu_hour": ("gpu_s", 3600.0),
}
#: How to run a pilot when a system has no answers yet (said by :func:`estimate`).
PILOT_ADVICE = (
    "no pilot yet: collect a few judgments first (e.g. set max_requests = 50 in the system's table, or "
    "--set systems.NAME.max_requests=50, and run `oddoneout collect`), then estimate again"
)


@dataclass
class RunMeter:
    """Measures one collecting call (wall and process CPU time; GPU time of a local GPU model) for the store.

    Parameters
    ----------
    uses_gpu : bool
        The agent runs a local model on a GPU: the time spent in its calls (:meth:`busy`) is
        counted as GPU seconds. Otherwise GPU seconds are ``None``.
    """

    uses_gpu: bool = False
    started_at: Any = field(default_factory=utc_now)
    _wall: float = field(default_factory=time.perf_counter)
    _cpu: float = field(default_factory=time.process_time)
    _busy: float = 0.0

    def busy(self, seconds: float) -> None:
        """Add ``seconds`` spent in the agent's calls."""
        self._busy += seconds

    def record(
        self,
        store: TripletStore,
        runner: str,
        n_asked: int,
        n_requests: int | None = None,
        n_retries: int | None = None,
    ) -> None:
        """Write the call's row into the store's :data:`RUNS_TABLE` (one transaction)."""
        values = (
            _iso(self.started_at),
            _iso(utc_now()),
            runner,
            int(n_asked),
            n_requests,
            n_retries,
            time.perf_counter() - self._wall,
            time.process_time() - self._cpu,
            self._busy if self.uses_gpu else None,
        )
        with store.transaction():
            store.connection.execute(_CREATE_RUNS)
            store.connection.execute(f"INSERT INTO {RUNS_TABLE} VALUES ({', '.join('?' * len(values))})", values)


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="microseconds")


def read_runs(path: str | Path) -> pd.DataFrame | None:
    """The collecting calls recorded in a store (``None`` for an export, or a store without the table)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return None
    connection = connect_read_only(path)
    try:
        if not has_table(connection, RUNS_TABLE):
            return None
        cursor = connection.execute(f"SELECT * FROM {RUNS_TABLE} ORDER BY rowid")
        names = [description[0] for description in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=names)
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def span_seconds(frame: pd.DataFrame) -> float | None:
    """Seconds from the first judgment's start to the last one's finish (``None`` without timestamps)."""
    started = pd.to_datetime(frame["started_at"].dropna(), utc=True, format="ISO8601")
    finished = pd.to_datetime(frame["finished_at"].dropna(), utc=True, format="ISO8601")
    if started.empty or finished.empty:
        return None
    return float((finished.max() - started.min()).total_seconds())


def _total(values: pd.Series) -> int | None:
    known = values.dropna()
    return int(known.sum()) if len(known) else None


def _seconds(values: pd.Series | None) -> float | None:
    if values is None:
        return None
    known = values.dropna()
    return float(known.sum()) if len(known) else None


def usage_of(frame: pd.DataFrame, runs: pd.DataFrame | None = None) -> dict[str, Any]:
    """What the judgments of ``frame`` (:func:`~oddoneout.collect.store.read_judgments`) and the calls ``runs`` used.

    Returns
    -------
    dict
        ``judgments``; ``requests`` (the attempts of each judgment, 1 where not recorded);
        ``retries`` (attempts beyond the first, ``None`` when no judgment recorded its attempts);
        ``tokens``, ``tokens_in``, ``tokens_out``, ``images`` (sums over the judgments that
        recorded them, ``None`` when none did) and ``judgments_with_tokens_in``,
        ``judgments_with_tokens_out``, ``judgments_with_images`` (how many did); ``wall_s`` (first
        start to last finish), ``latency_s`` (summed latencies); ``cpu_s``, ``gpu_s`` (summed
        over the recorded calls, ``None`` when none recorded them) and ``runs`` (calls recorded).
    """
    attempts = frame["attempts"].dropna()
    usage: dict[str, Any] = {
        "judgments": int(len(frame)),
        "requests": int(frame["attempts"].fillna(1).sum()),
        "retries": int((attempts - 1).clip(lower=0).sum()) if len(attempts) else None,
        "tokens": _total(frame["tokens"]),
    }
    for name in ("tokens_in", "tokens_out", "images"):
        usage[name] = _total(frame[name])
        usage[f"judgments_with_{name}"] = int(frame[name].notna().sum())
    usage["wall_s"] = span_seconds(frame)
    usage["latency_s"] = _seconds(frame["latency_s"])
    usage["runs"] = 0 if runs is None else int(len(runs))
    usage["cpu_s"] = None if runs is None else _seconds(runs["cpu_s"])
    usage["gpu_s"] = None if runs is None else _seconds(runs["gpu_s"])
    return usage


def price(usage: Mapping[str, Any], prices: Mapping[str, float | None] | None) -> tuple[float | None, list[str]]:
    """The price in US dollars of ``usage`` at ``prices`` (:data:`PRICE_KEYS`).

    Each price multiplies its quantity (:data:`PRICED`): input tokens and output tokens per
    million, images, GPU hours. A quantity of 0 costs nothing whatever its price; a quantity that is
    not known (``None``) and has no price is not part of the bill.

    Returns
    -------
    price : float or None
        ``None`` when no price is set, when a priced quantity is not known (e.g. the token split of
        a store written before format 3), or when a quantity above 0 has no price: never a 0 that
        stands for "unknown".
    notes : list of str
        Why the price is ``None`` (empty when it is not).
    """
    prices = prices or {}
    if all(prices.get(key) is None for key in PRICE_KEYS):
        return None, ["no price set ([cost] in the study config)"]
    total, notes = 0.0, []
    for key, (quantity, unit) in PRICED.items():
        amount, rate = usage.get(quantity), prices.get(key)
        if amount == 0 or (amount is None and rate is None):
            continue
        if amount is None:
            notes.append(f"{quantity} not known, priced by {key}")
        elif rate is None:
            notes.append(f"{quantity} = {amount:g} but {key} is not set")
        else:
            total += float(amount) / unit * float(rate)
    return (None, notes) if notes else (total, [])


def store_cost(path: str | Path, prices: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """The cost record of one store (``.sqlite``/``.db``) or export (``.parquet``): :func:`usage_of` and its price.

    Parameters
    ----------
    path : path
        The system's store (its runs table too) or export (usage per judgment only).
    prices : mapping, optional
        The system's prices (:meth:`~oddoneout.config.sections.CostSettings.prices`).

    Returns
    -------
    dict
        The fields of :func:`usage_of`, ``price_usd`` (:func:`price`), ``prices`` (those used)
        and ``notes`` (why a figure is ``None``).
    """
    frame = read_judgments(path)
    runs = read_runs(path)
    return cost_record(frame, runs, prices)


def cost_record(
    frame: pd.DataFrame, runs: pd.DataFrame | None, prices: Mapping[str, float | None] | None = None
) -> dict[str, Any]:
    """:func:`usage_of` the judgments and runs, with the price and notes (see :func:`store_cost`)."""
    record = usage_of(frame, runs)
    notes = []
    unsplit = record["judgments"] - record["judgments_with_tokens_in"]
    if record["judgments"] and record["tokens"] is None and record["tokens_in"] is None:
        notes.append("no token counts recorded (the agent reports none)")
    elif unsplit:
        notes.append(f"tokens in/out not recorded for {unsplit} judgments (a store written before format 3?)")
    if record["cpu_s"] is None:
        notes.append("cpu_s not recorded (no collecting call measured: an older store, an export or Ray shards)")
    if record["gpu_s"] is None:
        notes.append("gpu_s not measured (the agent runs no local model on a GPU)")
    record["price_usd"], why = price(record, prices)
    record["prices"] = {key: (prices or {}).get(key) for key in PRICE_KEYS}
    record["notes"] = notes + [f"price: {note}" for note in why]
    return record


def estimate(
    record: Mapping[str, Any],
    n_design: int,
    n_stored: int,
    prices: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """What the trials of a design not stored yet will take and cost, at the rates of the stored ones.

    Parameters
    ----------
    record : mapping
        The store's :func:`store_cost` (the pilot), or ``{}`` when the system has no store yet.
    n_design : int
        Trials of the system's designs.
    n_stored : int
        Trials of those designs already stored.
    prices : mapping, optional
        The system's prices.

    Returns
    -------
    dict
        ``n_design``, ``n_stored``, ``n_remaining``, ``pilot`` (judgments measured); with a pilot,
        ``projected``: ``requests``, ``tokens``, ``tokens_in``, ``tokens_out``, ``images``,
        ``wall_s``, ``cpu_s``, ``gpu_s`` of the remaining trials (each the per-judgment rate times
        ``n_remaining``; ``None`` where the pilot did not measure it) and ``price_usd``
        (:func:`price` of those); without one, ``advice`` (how to run a pilot).
    """
    n_remaining = max(int(n_design) - int(n_stored), 0)
    n_pilot = int(record.get("judgments") or 0)
    result: dict[str, Any] = {"n_design": int(n_design), "n_stored": int(n_stored), "n_remaining": n_remaining}
    result["pilot"] = n_pilot
    if not n_pilot:
        result["advice"] = PILOT_ADVICE
        return result

    def rate(name: str, over: int | None = None) -> float | None:
        value, n = record.get(name), n_pilot if over is None else over
        return None if value is None or not n else float(value) / n

    projected: dict[str, Any] = {}
    for name in ("requests", "tokens", "wall_s", "cpu_s", "gpu_s"):
        per = rate(name)
        projected[name] = None if per is None else per * n_remaining
    for name in ("tokens_in", "tokens_out", "images"):  # per judgment that recorded it
        per = rate(name, record.get(f"judgments_with_{name}"))
        projected[name] = None if per is None else per * n_remaining
    projected["price_usd"], why = price(projected, prices)
    result["projected"] = projected
    if why:
        result["notes"] = [f"price: {note}" for note in why]
    return result


def _amount(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.4f}"


def format_cost(record: Mapping[str, Any]) -> list[str]:
    """Lines of a :func:`store_cost` record, for ``oddoneout status``."""
    lines = [
        f"  cost: requests {record['requests']:,} (retries {_amount(record['retries'])}), "
        f"tokens in {_amount(record['tokens_in'])} / out {_amount(record['tokens_out'])} "
        f"(total {_amount(record['tokens'])}), images {_amount(record['images'])}",
        f"    wall {_amount(record['wall_s'], 1, ' s')} (latency summed {_amount(record['latency_s'], 1, ' s')}), "
        f"cpu {_amount(record['cpu_s'], 1, ' s')}, gpu {_amount(record['gpu_s'], 1, ' s')}; "
        f"price {_usd(record['price_usd'])}",
    ]
    lines.extend(f"    ({note})" for note in record.get("notes", ()))
    return lines


def format_estimate(name: str, result: Mapping[str, Any]) -> list[str]:
    """Lines of one system's :func:`estimate`, for ``oddoneout estimate``."""
    head = f"{name}: {result['n_design']:,} trials in the design, {result['n_stored']:,} stored, "
    head += f"{result['n_remaining']:,} to ask"
    if "projected" not in result:
        return [head, f"  {result.get('advice', PILOT_ADVICE)}"]
    p = result["projected"]
    lines = [
        head,
        f"  at the rates of {result['pilot']:,} judgments stored: requests {_amount(p['requests'])}, "
        f"tokens in {_amount(p['tokens_in'])} / out {_amount(p['tokens_out'])} (total {_amount(p['tokens'])}), "
        f"images {_amount(p['images'])}",
        f"  wall {_amount(p['wall_s'], 1, ' s')}, cpu {_amount(p['cpu_s'], 1, ' s')}, "
        f"gpu {_amount(p['gpu_s'], 1, ' s')}; price {_usd(p['price_usd'])}",
    ]
    lines.extend(f"  ({note})" for note in result.get("notes", ()))
    return lines
