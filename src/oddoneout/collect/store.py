"""The triplet store: every judgment of one system, durable while collecting, exported to Parquet.

One SQLite file (WAL mode) holds one system's judgments, of any trial type (one per design).
Each trial key ``(design, triplet_index, ordering, repeat)`` is stored at most once and never
replaced, so a collection can be killed at any moment and resumed by asking only the missing
trials. Failed judgments (status other than ``ok``) are kept with their raw answer and error;
only ``ok`` ones become :class:`~oddoneout.triplets.Triplets`.

Stores and exports are written in format 3 (:mod:`oddoneout.collect.judgment_rows` owns its
columns). Those of format 1 (odd-one-out only, written before trial types) are read as format-3
files whose every trial is odd-one-out; those of format 2 (before the usage columns: prompt and
completion tokens, images, attempts) with those columns ``NULL`` (not known). A store of an older
format opened for writing keeps its format (a format-1 store takes odd-one-out judgments only; a
format-2 store drops the usage of the answers it takes), so the versions that wrote it can still
open it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import nullcontext
from datetime import datetime, timezone
from itertools import repeat
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oddoneout import __version__
from oddoneout.agents.base import STATUSES, Answer
from oddoneout.atomic import atomic_path, out_of_room
from oddoneout.collect.designs import TripletDesign, encode_keys
from oddoneout.collect.judgment_rows import (
    ADDED,
    ANSWER_COLUMNS,
    COLUMNS,
    KEY_COLUMNS,
    SCHEMA,
    added_in,
    answer_rows,
    format_of_columns,
    shown_items,
    trial_types_of,
    triplets_from_table,
)
from oddoneout.errors import WRITE_AGAIN, InputError, OddoneoutError, StorageError, UnreadableFile
from oddoneout.files import read_parquet, read_parquet_schema
from oddoneout.provenance import format_version, provenance
from oddoneout.triplets import ODD_ONE_OUT, TrialSet, Triplets, as_item_ids, register_reader

logger = logging.getLogger(__name__)

_META_KEY = b"oddoneout"
#: What to do about a store that cannot be read (garbled, truncated, empty, another format).
STORE_REMEDY = "delete it (or move it away) to start this system's collection over, or restore it from a copy"
#: The kind of file of stores and exports (their provenance ``kind``, and whose format version they have).
KIND = "triplets"
#: The format version this package writes a new store or export in.
FORMAT_VERSION = format_version(KIND)

_status_list = ", ".join(f"'{status}'" for status in STATUSES)
_CREATE = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (
    design TEXT NOT NULL,
    triplet_index INTEGER NOT NULL,
    ordering INTEGER NOT NULL CHECK (ordering >= 0),
    repeat INTEGER NOT NULL CHECK (repeat >= 0),
    item_0 TEXT NOT NULL,
    item_1 TEXT NOT NULL,
    item_2 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({_status_list})),
    choice INTEGER CHECK (choice >= 0),
    odd_one_out TEXT,
    prob_0 REAL,
    prob_1 REAL,
    prob_2 REAL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT,
    raw_answer TEXT,
    error TEXT,
    tokens INTEGER,
    started_at TEXT,
    finished_at TEXT,
    latency_s REAL,
    trial_type TEXT NOT NULL,
    more_items TEXT,
    ranking TEXT,
    more_probs TEXT,
    tokens_in INTEGER CHECK (tokens_in >= 0),
    tokens_out INTEGER CHECK (tokens_out >= 0),
    images INTEGER CHECK (images >= 0),
    attempts INTEGER CHECK (attempts >= 0),
    PRIMARY KEY (design, triplet_index, ordering, repeat)
);
"""


def _insert(columns: Sequence[str]) -> str:
    return f"INSERT OR IGNORE INTO judgments ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _table_columns(connection: sqlite3.Connection) -> tuple[str, ...]:
    """The columns the store's ``judgments`` table has (those of its format)."""
    return tuple(str(row[1]) for row in connection.execute("PRAGMA table_info(judgments)"))


def _select_list(present: Sequence[str], wanted: Sequence[str]) -> str:
    """SQL selecting ``wanted`` from a table with columns ``present``: a column a later format added
    reads as the value every row of an older format has (:data:`~oddoneout.collect.judgment_rows.ADDED`)."""
    parts = []
    for name in wanted:
        if name in present:
            parts.append(name)
        elif added_in(name) > 1:
            value = ADDED[added_in(name)][name]
            parts.append(f"{'NULL' if value is None else repr(str(value))} AS {name}")
        else:
            raise InputError(f"the judgments table has no column {name!r}")
    return ", ".join(parts)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _iso(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise InputError(f"timestamps must be timezone-aware (UTC), got naive {moment!r}")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _as_datetime(moment: datetime | str) -> datetime:
    return datetime.fromisoformat(moment) if isinstance(moment, str) else moment


class TripletStore:
    """Durable store of one system's judgments, of any trial type (one SQLite file).

    Parameters
    ----------
    path : path
        The SQLite file; created with its directory if missing.
    agent : str
        Name of the system whose judgments the store holds. An existing store of another
        agent is refused.
    model : str
        Model identifier. An existing store recorded with another model is refused too:
        judgments of two models are two systems.
    item_ids : sequence of str, optional
        The stimulus vocabulary, recorded so that exported triplets keep stable indices. Once
        recorded it cannot change, and stored trials must use these ids.

    Raises
    ------
    UnreadableFile
        When the file exists but is not a triplet store that SQLite can read (empty, garbled,
        another format): an existing file is never rebuilt over. Any later SQLite failure of
        the store (see :data:`STORE_REMEDY`) is an error naming the file too, never a
        :class:`sqlite3.DatabaseError`.

    Notes
    -----
    Every :meth:`add` is one transaction (``synchronous=FULL``), so a killed process loses at
    most the batch it had not yet handed to :meth:`add`. Readers can open the file while a
    collection writes to it (WAL mode).
    """

    def __init__(self, path: str | Path, agent: str, model: str, item_ids: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        if not agent or not model:
            raise InputError(f"{self.path}: a store needs a non-empty agent name and model, got {agent!r}, {model!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.n_duplicates = 0
        existed = self.path.exists()
        self._connection = _connect(self.path)
        try:
            if existed:  # an existing file is a store or is refused: never rebuilt over
                _require_store_tables(self._connection, self.path)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute("PRAGMA busy_timeout=10000")
            self._connection.execute("PRAGMA cache_size=-65536")  # 64 MiB: millions of keys in the index
            self._connection.executescript(_CREATE)
            self._columns = _table_columns(self._connection)
            #: The store's format: 3, or that of a store written before (it keeps it): 1 before trial
            #: types, 2 before the usage columns.
            self.format_version = format_of_columns(self._columns)
            meta = _read_meta(self._connection)
            if meta and ("agent" not in meta or "model" not in meta):
                raise InputError(f"{self.path}: triplet store has no agent/model in its meta table")
            self.agent, self.model = str(agent), str(model)
            self._init_meta(meta, item_ids)
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def open(cls, path: str | Path) -> "TripletStore":
        """Open an existing store with the agent and model it records."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"triplet store not found: {path}")
        meta = _read_store_meta(path)
        return cls(path, meta["agent"], meta["model"])

    def _init_meta(self, meta: dict[str, str], item_ids: Sequence[str] | None) -> None:
        ids = None if item_ids is None else [str(i) for i in item_ids]
        if ids is not None and len(set(ids)) != len(ids):
            raise InputError(f"{self.path}: item_ids has duplicates")
        if not meta:
            values = {
                "format_version": str(self.format_version),
                "agent": self.agent,
                "model": self.model,
                "created_at": _iso(utc_now()),
                "package_version": __version__,
            }
            if ids is not None:
                values["item_ids"] = json.dumps(ids)
            self._write_meta(values)
            meta = values
        else:
            version = int(meta.get("format_version", "0"))
            if version > FORMAT_VERSION:
                raise InputError(
                    f"{self.path}: store format version {version} is newer than this package reads ({FORMAT_VERSION})"
                )
            if version > self.format_version:
                raise InputError(f"{self.path}: store format version {version} without its columns: {STORE_REMEDY}")
            if meta.get("agent") != self.agent:
                raise InputError(
                    f"{self.path}: this store holds judgments of agent {meta.get('agent')!r}; "
                    f"refusing judgments of agent {self.agent!r} (use one store per system)"
                )
            if meta.get("model") != self.model:
                raise InputError(
                    f"{self.path}: this store holds judgments of model {meta.get('model')!r} "
                    f"(agent {self.agent!r}); refusing model {self.model!r}"
                )
            stored_ids = json.loads(meta["item_ids"]) if "item_ids" in meta else None
            if ids is not None and stored_ids is None:
                self._write_meta({"item_ids": json.dumps(ids)})
            elif ids is not None and ids != stored_ids:
                raise InputError(f"{self.path}: item_ids differ from the vocabulary recorded in the store")
        recorded = json.loads(meta["item_ids"]) if "item_ids" in meta else ids
        self.item_ids: tuple[str, ...] | None = None if recorded is None else tuple(recorded)
        self._vocabulary = None if self.item_ids is None else frozenset(self.item_ids)

    def _write_meta(self, values: dict[str, str]) -> None:
        with _transaction(self._connection):
            self._connection.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    # context manager -----------------------------------------------------------------------
    def __enter__(self) -> "TripletStore":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; :meth:`add` opens its own transactions)."""
        if self._connection is None:
            raise InputError(f"{self.path}: the store is closed")
        return self._connection

    def __len__(self) -> int:
        return int(self.connection.execute("SELECT count(*) FROM judgments").fetchone()[0])

    # reading -------------------------------------------------------------------------------
    def _query(self, wanted: Sequence[str], where: str = "", parameters: Sequence[Any] = ()) -> pa.Table:
        """Columns ``wanted`` of the judgments (format-1 rows with format 2's values), in insertion order."""
        sql = f"SELECT {_select_list(self._columns, wanted)} FROM judgments {where} ORDER BY rowid"
        return _query_table(self.connection, sql, parameters)

    def stored_trials(self, design_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Packed keys (see :meth:`TripletDesign.key_codes`) and shown items of one design's stored trials.

        Raises :class:`InputError` when the design's trials are stored with several trial types.
        """
        wanted = ("triplet_index", "ordering", "repeat", "trial_type", "item_0", "item_1", "item_2", "more_items")
        table = self._query(wanted, "WHERE design = ?", (design_name,))
        if not len(table):
            return np.zeros(0, dtype=np.int64), np.zeros((0, 3), dtype=str)
        kinds = trial_types_of(table)
        if len(kinds) > 1:
            raise InputError(f"{self.path}: design {design_name!r} is stored with several trial types {kinds}")
        codes = encode_keys(*(table[column].to_numpy() for column in wanted[:3]))
        return codes, shown_items(table, kinds[0], str(self.path))

    def stored_trial_type(self, design_name: str) -> str | None:
        """The trial type (spec) of a design's stored trials, ``None`` when none is stored."""
        if self.format_version < 2:
            found = self.connection.execute("SELECT 1 FROM judgments WHERE design = ? LIMIT 1", (design_name,))
            return ODD_ONE_OUT.spec if found.fetchone() else None
        row = self.connection.execute("SELECT trial_type FROM judgments WHERE design = ? LIMIT 1", (design_name,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def missing(self, design: TripletDesign) -> TripletDesign:
        """The trials of ``design`` not stored yet, in design order.

        Raises :class:`InputError` when the design's trials are stored as another trial type,
        or a stored trial has the key of a design trial but other items: the design changed
        under the same name (another trial type, seed or item list), and its answers would
        otherwise be mixed with the stored ones.
        """
        stored_type = self.stored_trial_type(design.name)
        if stored_type is None:
            return design
        if stored_type != design.trial_type.spec:
            raise InputError(
                f"{self.path}: design {design.name!r} is stored as {stored_type} trials but asks "
                f"{design.trial_type.spec} trials: the design changed under the same name; give it another "
                "name or use another store"
            )
        stored_codes, stored_items = self.stored_trials(design.name)
        if stored_codes.size == 0:
            return design
        codes = design.key_codes()
        _, in_design, in_store = np.intersect1d(codes, stored_codes, assume_unique=True, return_indices=True)
        differ = np.flatnonzero((design.items[in_design] != stored_items[in_store]).any(axis=1))
        if differ.size:
            row = int(in_design[differ[0]])
            raise InputError(
                f"{self.path}: trial {design.subset([row]).keys()[0]} is stored showing "
                f"{stored_items[in_store[differ[0]]].tolist()} but design {design.name!r} shows "
                f"{design.items[row].tolist()} ({differ.size} such trials): the design changed under the same "
                "name (seed, size regime or item list); give it another name or use another store"
            )
        return design.subset(~np.isin(codes, stored_codes))

    def design_counts(self) -> dict[str, int]:
        """Number of stored judgments by design name."""
        query = "SELECT design, count(*) FROM judgments GROUP BY design ORDER BY design"
        return {str(design): int(count) for design, count in self.connection.execute(query)}

    def counts(self) -> dict[str, int]:
        """Number of stored judgments by status (every status of :data:`STATUSES`, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for status, count in self.connection.execute("SELECT status, count(*) FROM judgments GROUP BY status"):
            counts[status] = int(count)
        return counts

    def judgments(self) -> pd.DataFrame:
        """Every stored judgment, in insertion order, one column per field of :data:`SCHEMA` (format 3)."""
        return _to_frame(self._query(COLUMNS))

    # writing -------------------------------------------------------------------------------
    def add(
        self,
        design: TripletDesign,
        answers: Sequence[Answer],
        started_at: datetime | str | Sequence[datetime | str],
        finished_at: datetime | str | Sequence[datetime | str],
        prompt_hash: str | None = None,
        agent: str | None = None,
        model: str | None = None,
    ) -> int:
        """Store one batch of answers in one transaction.

        Parameters
        ----------
        design : TripletDesign
            The trials answered (``answers[i]`` answers row ``i``).
        answers : sequence of Answer
            One answer per trial.
        started_at, finished_at : datetime (UTC) or ISO string, or one per trial
            When the request(s) started and finished. With one interval for the batch, each
            judgment's ``latency_s`` is the interval divided by the batch size (seconds per
            judgment); with one interval per trial it is that trial's interval.
        prompt_hash : str, optional
            Hash of the prompt template.
        agent, model : str, optional
            The answering agent's name and model, checked against the store's.

        Returns
        -------
        int
            Number of judgments inserted. A trial already stored is never replaced: it is
            skipped, counted in :attr:`n_duplicates` and logged as a warning. Inside
            :meth:`transaction` the rows commit with the caller's transaction.
        """
        if agent is not None and agent != self.agent:
            raise InputError(f"{self.path}: store of agent {self.agent!r} refuses judgments of agent {agent!r}")
        if model is not None and model != self.model:
            raise InputError(f"{self.path}: store of model {self.model!r} refuses judgments of model {model!r}")
        if self.format_version < 2 and design.trial_type != ODD_ONE_OUT:
            raise InputError(
                f"{self.path}: a store of format 1 holds odd-one-out trials only, not the {design.trial_type.spec} "
                f"trials of design {design.name!r}: collect them into a new store"
            )
        rows = self._rows(design, answers, started_at, finished_at, prompt_hash)
        connection = self.connection
        # inside :meth:`transaction` the rows join the caller's transaction; else they are one of their own
        with nullcontext() if connection.in_transaction else _transaction(connection):
            before = connection.total_changes
            connection.executemany(_insert(self._columns), rows)
            inserted = connection.total_changes - before
        duplicates = len(rows) - inserted
        if duplicates:
            self.n_duplicates += duplicates
            logger.warning(
                "%s: %d of %d judgments of design %r were already stored and were not replaced",
                self.path,
                duplicates,
                len(rows),
                design.name,
            )
        return inserted

    def _rows(
        self,
        design: TripletDesign,
        answers: Sequence[Answer],
        started_at: Any,
        finished_at: Any,
        prompt_hash: str | None,
    ) -> list[tuple]:
        n = len(design)
        if len(answers) != n:
            raise InputError(f"{self.path}: {len(answers)} answers for {n} trials of design {design.name!r}")
        for i, answer in enumerate(answers):
            if not isinstance(answer, Answer):
                raise InputError(f"{self.path}: answer {i} is not an Answer: {answer!r}")
        if n == 0:
            return []
        if self._vocabulary is not None:
            shown = design.items.ravel().tolist()
            if not self._vocabulary.issuperset(shown):
                item = next(item for item in shown if item not in self._vocabulary)
                raise InputError(f"{self.path}: design {design.name!r} uses item {item!r}, not in the store vocabulary")
        started, finished, latency = _intervals(started_at, finished_at, n)
        values = {
            **answer_rows(design, answers, str(self.path)),
            "design": repeat(design.name, n),
            "triplet_index": design.triplet_index.tolist(),
            "ordering": design.ordering.tolist(),
            "repeat": design.repeat.tolist(),
            "agent": repeat(self.agent, n),
            "model": repeat(self.model, n),
            "prompt_hash": repeat(prompt_hash, n),
            "started_at": started,
            "finished_at": finished,
            "latency_s": latency,
        }
        return list(zip(*(values[column] for column in self._columns)))

    def transaction(self) -> "_transaction":
        """``with store.transaction():`` one immediate transaction around :meth:`add` and other statements.

        For a writer that keeps its own tables in the store's file (the lease book of
        :mod:`oddoneout.collect.leases`): the judgments it adds and its own rows commit together or
        not at all. :meth:`add` inside the block joins it instead of committing on its own.
        """
        return _transaction(self.connection)

    # export --------------------------------------------------------------------------------
    def export_parquet(self, path: str | Path, chunk_size: int = 200_000, **recorded: Any) -> Path:
        """Write every judgment to a Parquet file, atomically (:func:`oddoneout.atomic.atomic_path`:
        a temporary name unique to this export, renamed onto ``path`` when complete).

        The file has the columns of :data:`SCHEMA` (format 3, whatever the store's format), one
        row per judgment in insertion order, and provenance in the schema metadata (key
        ``oddoneout``): ``kind="triplets"``, agent, model, ``item_ids``, counts by status, trials
        per design, the trial type of each design (``trial_types``) and the ``recorded`` fields.
        """
        path = Path(path)
        connection = self.connection
        designs = self.design_counts()
        trial_types = {name: self.stored_trial_type(name) for name in designs}
        prompt_hashes = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT prompt_hash FROM judgments WHERE prompt_hash IS NOT NULL ORDER BY prompt_hash"
            )
        ]
        meta = provenance(
            KIND,
            agent=self.agent,
            model=self.model,
            item_ids=None if self.item_ids is None else list(self.item_ids),
            n_judgments=sum(designs.values()),
            counts=self.counts(),
            designs=designs,
            trial_types=trial_types,
            prompt_hashes=prompt_hashes,
            **recorded,
        )
        schema = SCHEMA.with_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
        with atomic_path(path) as temporary:
            with pq.ParquetWriter(temporary, schema) as writer:
                selected = _select_list(self._columns, COLUMNS)
                cursor = connection.execute(f"SELECT {selected} FROM judgments ORDER BY rowid")
                while rows := cursor.fetchmany(chunk_size):
                    writer.write_table(_rows_to_table(rows, schema))
        return path


class _transaction:
    """``with _transaction(connection):`` runs the block in one immediate transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.connection.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _intervals(started_at: Any, finished_at: Any, n: int) -> tuple[Sequence[str], Sequence[str], Sequence[float]]:
    """ISO start/finish times and seconds per judgment for ``n`` trials."""
    if isinstance(started_at, (datetime, str)) != isinstance(finished_at, (datetime, str)):
        raise InputError("started_at and finished_at must both be single times or both one per trial")
    if isinstance(started_at, (datetime, str)):
        seconds = (_as_datetime(finished_at) - _as_datetime(started_at)).total_seconds()
        return repeat(_iso(started_at), n), repeat(_iso(finished_at), n), repeat(seconds / max(n, 1), n)
    if len(started_at) != n or len(finished_at) != n:
        raise InputError(
            f"need one start and one finish time per trial ({n}), got {len(started_at)}, {len(finished_at)}"
        )
    started_us, finished_us = _utc_microseconds(started_at), _utc_microseconds(finished_at)
    if started_us is not None and finished_us is not None:
        # elapsed UTC microseconds / 1e6: timedelta.total_seconds() of the UTC times (also across a DST change,
        # where subtracting two datetimes of the same zone would give the wall-clock difference)
        latency = ((finished_us - started_us) / 1e6).tolist()
        return _iso_from_microseconds(started_us), _iso_from_microseconds(finished_us), latency
    started, finished = [_iso(s) for s in started_at], [_iso(f) for f in finished_at]
    try:
        latency = [(_as_datetime(f) - _as_datetime(s)).total_seconds() for s, f in zip(started_at, finished_at)]
    except TypeError as exc:  # a naive ISO string next to an aware time
        raise InputError(f"timestamps must be timezone-aware (UTC): {exc}") from exc
    return started, finished, latency


def _utc_microseconds(moments: Sequence[Any]) -> np.ndarray | None:
    """Microseconds since the Unix epoch of timezone-aware datetimes, or ``None`` for any other input.

    ``None`` (strings, naive datetimes, anything unusual) sends the caller to the per-item path,
    which keeps strings verbatim and names a naive time in its error.
    """
    if not all([type(moment) is datetime and moment.tzinfo is not None for moment in moments]):
        return None
    try:
        return pa.array(moments, type=pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


_ISO_TEMPLATE = np.frombuffer(b"0000-00-00T00:00:00.000000+00:00", dtype=np.uint8)
# (offset in _ISO_TEMPLATE, number of digits) of year, month, day, hour, minute, second, microsecond
_ISO_FIELDS = ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 6))


def _iso_from_microseconds(microseconds: np.ndarray) -> list[str]:
    """``datetime.isoformat(timespec="microseconds")`` of UTC times, for a whole array at once.

    Builds the ASCII characters in an ``(n, 32)`` byte matrix: per-trial timestamps cost
    about a tenth of formatting each datetime in Python.
    """
    days = np.floor_divide(microseconds, 86_400_000_000)
    of_day = microseconds - days * 86_400_000_000
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    values = (
        years.astype(np.int64) + 1970,
        months.astype(np.int64) % 12 + 1,
        (dates - months).astype(np.int64) + 1,
        of_day // 3_600_000_000,
        of_day // 60_000_000 % 60,
        of_day // 1_000_000 % 60,
        of_day % 1_000_000,
    )
    text = np.tile(_ISO_TEMPLATE, (len(microseconds), 1))
    for (offset, width), value in zip(_ISO_FIELDS, values):
        for position in range(width):
            text[:, offset + position] = value // 10 ** (width - 1 - position) % 10 + ord("0")
    return text.view(f"S{_ISO_TEMPLATE.size}").ravel().astype(f"U{_ISO_TEMPLATE.size}").tolist()


def _rows_to_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows)) if rows else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema)], schema=schema
    )


def _query_table(connection: sqlite3.Connection, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
    cursor = connection.execute(sql, parameters)
    names = [description[0] for description in cursor.description]
    schema = pa.schema([SCHEMA.field(name) for name in names])
    return _rows_to_table(cursor.fetchall(), schema)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table to pandas, integer columns as nullable ``Int64`` so NULL choices stay NULL."""
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _read_meta(connection: sqlite3.Connection) -> dict[str, str]:
    return dict(connection.execute("SELECT key, value FROM meta"))


# the SQLite boundary ---------------------------------------------------------------------------
def _store_error(path: Path, exc: sqlite3.DatabaseError) -> OddoneoutError:
    """The one error for an SQLite failure of the store at ``path``: one line naming the file.

    A garbled file or one of another format (``SQLITE_CORRUPT*``, ``SQLITE_NOTADB``) is an
    :class:`UnreadableFile` saying :data:`STORE_REMEDY`; a full disk or a failed write
    (``SQLITE_FULL``, ``SQLITE_IOERR*``) a :class:`StorageError` (what was stored is kept); any
    other failure (e.g. locked) keeps SQLite's own words.
    """
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return UnreadableFile(path, f"not a readable triplet store ({exc})", STORE_REMEDY)
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or out_of_room(exc):
        return StorageError(f"{path}: the triplet store could not be written ({exc}: is the disk full?); {WRITE_AGAIN}")
    return OddoneoutError(f"{path}: the triplet store failed ({exc})")


class _StoreCursor(sqlite3.Cursor):
    """A cursor whose every SQLite failure, executing or fetching, is :func:`_store_error`."""

    def _guard(self, method: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        except sqlite3.ProgrammingError:  # a bug of ours (closed connection, wrong bindings), not the file
            raise
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.connection.store_path, exc) from exc

    def execute(self, *args: Any) -> "_StoreCursor":
        return self._guard(sqlite3.Cursor.execute, *args)

    def executemany(self, *args: Any) -> "_StoreCursor":
        return self._guard(sqlite3.Cursor.executemany, *args)

    def executescript(self, *args: Any) -> "_StoreCursor":
        return self._guard(sqlite3.Cursor.executescript, *args)

    def fetchone(self) -> Any:
        return self._guard(sqlite3.Cursor.fetchone)

    def fetchmany(self, *args: Any) -> list[Any]:
        return self._guard(sqlite3.Cursor.fetchmany, *args)

    def fetchall(self) -> list[Any]:
        return self._guard(sqlite3.Cursor.fetchall)

    def __next__(self) -> Any:
        return self._guard(sqlite3.Cursor.__next__)


class _StoreConnection(sqlite3.Connection):
    """A connection to one store: every statement runs through a :class:`_StoreCursor`.

    ``Connection.execute`` and friends are redefined here because the C versions bypass a
    cursor subclass's methods.
    """

    store_path: Path

    def cursor(self, factory: Any = _StoreCursor) -> _StoreCursor:
        return super().cursor(factory)

    def execute(self, *args: Any) -> _StoreCursor:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> _StoreCursor:
        return self.cursor().executemany(*args)

    def executescript(self, *args: Any) -> _StoreCursor:
        return self.cursor().executescript(*args)


def _connect(path: Path, read_only: bool = False) -> _StoreConnection:
    """The one way the store at ``path`` is opened: a :class:`_StoreConnection` (autocommit unless read-only)."""
    try:
        if read_only:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, factory=_StoreConnection)
        else:
            connection = sqlite3.connect(path, isolation_level=None, factory=_StoreConnection)
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, exc) from exc
    connection.store_path = path
    return connection


def table_names(connection: sqlite3.Connection) -> set[str]:
    """The tables of the database open on ``connection``."""
    return {str(row[0]) for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def has_table(connection: sqlite3.Connection, name: str) -> bool:
    """Whether the database open on ``connection`` has the table ``name`` (optional tables of a store)."""
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def _require_store_tables(connection: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite file at ``path`` without the store's tables (empty, or another program's)."""
    tables = table_names(connection)
    if not tables:
        what = "an empty file" if path.stat().st_size == 0 else "an SQLite database without tables"
        raise UnreadableFile(path, f"{what}, not a triplet store", STORE_REMEDY)
    if not {"meta", "judgments"} <= tables:
        problem = f"an SQLite database but not a triplet store (tables {sorted(tables)})"
        raise UnreadableFile(path, problem, "move it away: it is another program's database")


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store at ``path`` (beside a running writer: WAL); one-line errors.

    Raises
    ------
    InputError
        When there is no such file, or it is not a readable triplet store.
    """
    if not path.is_file():
        raise InputError(f"triplet store not found: {path}")
    connection = _connect(path, read_only=True)
    try:
        _require_store_tables(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def check_store(path: str | Path, quick: bool = False) -> list[str]:
    """SQLite's ``PRAGMA integrity_check`` of a triplet store: what is wrong with it, nothing when intact.

    Reads every page, index and constraint through a read-only connection (so it can run while a
    collection writes), which takes a while for millions of judgments.

    Parameters
    ----------
    path : path
        The store (``.sqlite``/``.db``).
    quick : bool
        ``PRAGMA quick_check`` instead: every page, but not whether the indexes match the rows
        (several times faster; what a stage checks before it trusts an export).

    Returns
    -------
    list of str
        The problems found, one line each; empty when the store is intact.

    Raises
    ------
    InputError
        If there is no such file.
    """
    path = Path(path)
    try:
        connection = connect_read_only(path)
        try:
            pragma = "quick_check" if quick else "integrity_check"
            rows = [str(row[0]) for row in connection.execute(f"PRAGMA {pragma}")]
        finally:
            connection.close()
    except UnreadableFile as exc:
        return [exc.problem]
    return [] if rows == ["ok"] else rows


def _read_store_meta(path: Path) -> dict[str, str]:
    connection = connect_read_only(path)
    try:
        meta = _read_meta(connection)
    finally:
        connection.close()
    if "agent" not in meta or "model" not in meta:
        raise InputError(f"{path}: triplet store has no agent/model in its meta table")
    return meta


def _read_parquet(path: Path, columns: Sequence[str] | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """Columns of an export (an older export's rows with the values of the columns it lacks) and its provenance."""
    schema = read_parquet_schema(path)
    raw = (schema.metadata or {}).get(_META_KEY)
    metadata = json.loads(raw) if raw else {}
    if metadata.get("kind") != KIND:
        raise InputError(f"{path}: not an oddoneout triplet export (schema metadata kind {metadata.get('kind')!r})")
    version = int(metadata.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise InputError(f"{path}: export format version {version} is newer than this package reads ({FORMAT_VERSION})")
    wanted = list(COLUMNS if columns is None else columns)
    absent = [name for name in wanted if name not in schema.names]
    filled = [name for name in absent if added_in(name) > version]
    if len(filled) < len(absent):
        raise InputError(f"{path}: triplet export lacks column(s) {[name for name in absent if name not in filled]}")
    table = read_parquet(path, columns=[name for name in wanted if name not in filled])
    for name in filled:
        value = pa.array([ADDED[added_in(name)][name]] * len(table), type=SCHEMA.field(name).type)
        table = table.append_column(SCHEMA.field(name), value)
    return table.select(wanted), metadata


def _read_any(path: str | Path, columns: Sequence[str] | None = None) -> tuple[pa.Table, list[str] | None]:
    """Judgment columns and the recorded vocabulary (or ``None``) from a store or an export."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"triplet file not found: {path}")
    if path.suffix == ".parquet":
        table, metadata = _read_parquet(path, columns)
        return table, metadata.get("item_ids")
    if path.suffix in {".sqlite", ".db"}:
        meta = _read_store_meta(path)
        connection = connect_read_only(path)
        try:
            selected = _select_list(_table_columns(connection), COLUMNS if columns is None else columns)
            table = _query_table(connection, f"SELECT {selected} FROM judgments ORDER BY rowid")
        finally:
            connection.close()
        return table, json.loads(meta["item_ids"]) if "item_ids" in meta else None
    raise InputError(f"{path}: judgments are read from .sqlite/.db stores or .parquet exports, not {path.suffix!r}")


def read_judgments(path: str | Path) -> pd.DataFrame:
    """Every judgment (all statuses) of a store (``.sqlite``/``.db``) or an export (``.parquet``)."""
    table, _ = _read_any(path)
    return _to_frame(table)


def read_key_codes(path: str | Path) -> dict[str, np.ndarray]:
    """Packed keys (:meth:`TripletDesign.key_codes`) of every stored trial, by design, from a store or an export."""
    designs, codes = _table_keys(_read_any(path, KEY_COLUMNS)[0])
    return {str(name): codes[designs == name] for name in np.unique(designs)}


def read_trial_types(path: str | Path) -> dict[str, list[str]]:
    """The trial types (specs) of every design's stored trials, from a store or an export (one each, normally)."""
    table = _read_any(path, ("design", "trial_type"))[0]
    frame = table.to_pandas()
    return {str(name): sorted(map(str, group.unique())) for name, group in frame.groupby("design")["trial_type"]}


def _table_keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's design name and packed key (:func:`encode_keys`) in a table with the key columns."""
    names = table["design"].to_numpy(zero_copy_only=False).astype(str)
    return names, encode_keys(*(table[column].to_numpy() for column in KEY_COLUMNS[1:]))


def export_record(path: str | Path) -> dict[str, Any]:
    """The provenance an export carries (agent, model, ``item_ids``, ``designs``: judgments per design...).

    ``trial_types`` (the trial type of each design) is filled in for an export of format 1, all
    of whose trials are odd-one-out.
    """
    record = _read_parquet(Path(path), columns=[])[1]
    if int(record.get("format_version", 1)) < 2:
        record.setdefault("trial_types", dict.fromkeys(record.get("designs", {}), ODD_ONE_OUT.spec))
    return record


def read_trial_set(
    path: str | Path,
    design: str | Sequence[str] | None = None,
    exclude: Mapping[str, np.ndarray] | None = None,
) -> TrialSet:
    """The ``ok`` judgments of a store or an export, one :class:`Triplets` per trial type.

    Parameters are those of :func:`read_judgments_as_triplets`.

    Returns
    -------
    TrialSet
        Over one vocabulary (what :meth:`SPoSE.fit <oddoneout.embed.spose.SPoSE.fit>` takes), one
        part per trial type in the order the types first appear in key order.
    """
    path = Path(path)
    table, item_ids = _read_any(path, ANSWER_COLUMNS)
    designs = None if design is None else [design] if isinstance(design, str) else list(design)
    if designs is not None:
        table = table.filter(pc.is_in(table["design"], pa.array(designs, pa.string())))
    if exclude:
        table = table.filter(pa.array(~_excluded(table, exclude)))
    table = table.sort_by([(column, "ascending") for column in KEY_COLUMNS])
    parts = triplets_from_table(table, item_ids, str(path))
    if not parts:
        what = f" in design(s) {designs}" if designs is not None else ""
        raise InputError(f"{path}: no judgment with status 'ok'{what} ({len(table)} read)")
    return TrialSet(tuple(parts))


def read_judgments_as_triplets(
    path: str | Path,
    design: str | Sequence[str] | None = None,
    exclude: Mapping[str, np.ndarray] | None = None,
) -> Triplets:
    """The ``ok`` judgments of a store or an export as :class:`Triplets` (of one trial type).

    Parameters
    ----------
    path : path
        ``.sqlite``/``.db`` store or ``.parquet`` export, of format 2 or 1.
    design : str or sequence of str, optional
        Keep only this design (or these designs), e.g. to leave the repeated-triplet design
        out of training. By default every design.
    exclude : mapping of str to array of int, optional
        Trials to leave out, as packed keys (:meth:`TripletDesign.key_codes`) by design name, e.g.
        the answers of excluded participant sessions (:func:`oddoneout.collect.quality.excluded_keys`).

    Returns
    -------
    Triplets
        In the canonical layout of their trial type: for odd-one-out the SPoSE convention (the
        odd one out in column 2, the other two in the order shown), for anchor and ranked trials
        the reference, the chosen option(s) in rank order, the other options in the order shown.
        The vocabulary is the store's recorded ``item_ids`` when there is one, else the sorted
        unique ids of all stored trials. Soft labels (reordered like the items) when every kept
        judgment has probabilities (and its type makes one choice per trial), else ``None``.
        Rows are in key order, so they (and a split of them) depend on what is stored, not on
        the order it was stored in (a resumed, Ray or concurrent collection).

    Raises
    ------
    InputError
        When the judgments kept are of several trial types (read them with
        :func:`read_trial_set`, or keep one design), or none is ``ok``.
    """
    trials = read_trial_set(path, design, exclude)
    if len(trials.parts) > 1:
        kinds = [part.trial_type.spec for part in trials.parts]
        raise InputError(
            f"{path}: the judgments are of several trial types {kinds}: read one design at a time (--design), "
            "or all of them with read_trial_set"
        )
    return trials.parts[0]


def _excluded(table: pa.Table, exclude: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which rows of a table of judgments hold a key of ``exclude`` (packed keys by design)."""
    names, codes = _table_keys(table)
    out = np.zeros(len(names), dtype=bool)
    for name, excluded in exclude.items():
        rows = names == name
        out[rows] = np.isin(codes[rows], np.asarray(excluded, dtype=np.int64))
    return out


def _load_stored_triplets(
    path: Path, items: Sequence[str] | str | Path | None, design: str | None
) -> Triplets | TrialSet:
    """The reader :func:`oddoneout.triplets.load_triplets` uses for stores and their exports.

    A :class:`Triplets`, or a :class:`TrialSet` when the judgments read are of several trial types.
    """
    trials = read_trial_set(path, design=design)
    item_ids = as_item_ids(items)
    if item_ids is not None:
        trials = TrialSet(tuple(part.reindex(item_ids) for part in trials.parts))
    return trials.parts[0] if len(trials.parts) == 1 else trials


register_reader("triplet store", (".sqlite", ".db"), _load_stored_triplets)
register_reader("triplet store export", (".parquet",), _load_stored_triplets)
