"""The lease book: which trials each participant session is asked, kept in the store's own SQLite file.

A served system (people in a browser, ``agent = "human"``) is asked by sessions, not by a runner.
Each session *leases* a batch of trial keys that no judgment and no live lease holds yet; a lease
lasts ``lease_seconds`` from the session's last activity, after which its keys go back to the
pool. An answer is stored only for a key leased to the answering session and not expired; in the
same transaction the judgment is added to the :class:`~oddoneout.collect.store.TripletStore`, the
response (session, position, input, response time) recorded and the lease removed. So:

* a reload (or a new browser of the same participant) gets the same leased trials back;
* a server restart loses nothing: sessions, leases and judgments are rows of one WAL file, each
  answer one transaction;
* nothing is assigned twice: a key with a judgment is never leased again, and a key has at most
  one lease (its primary key); a replayed or forged answer finds no lease of its session and
  changes nothing;
* no session is shown the same unordered triplet twice: another ordering or repeat of a triplet
  the session holds or answered goes to another session, so the repeats of the noise-ceiling
  design are answered by different participants (the noise ceiling is across people).

Trials are leased in the *pool order*: the designs interleaved in proportion to their sizes (each
design's trials in its own order), so every session gets its share of each design, e.g. of the
repeated triplets, rather than the first sessions the main design and the last ones the repeats.

Tables (beside the store's ``meta`` and ``judgments``, which the store owns):

``serve_sessions``  one row per participant session: the salted hash of the participant's id
                    (unique: one session per participant), platform, the platform's study and
                    session ids, trials to answer, completion code, created/finished times.
``serve_leases``    one row per leased key: session, position in the session, expiry (Unix s).
``serve_responses`` one row per stored answer: key, session, position, input, response time.
``serve_catch``     one row per catch trial of a session: the item shown twice, the odd item, the
                    odd item's position as shown, the trial it comes before; once answered, the
                    choice, input and response time. Catch trials are asked among a session's
                    trials (key ``(CATCH_DESIGN, index, 0, 0)``) but never stored as judgments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import numpy as np

from oddoneout.agents.base import Answer, TrialKey
from oddoneout.collect.designs import TripletDesign, encode_keys
from oddoneout.collect.store import TripletStore, utc_now
from oddoneout.errors import InputError, OddoneoutError
from oddoneout.triplets import ODD_ONE_OUT, TrialType

# a trial's key, the session it is leased to or answered in, and its place in that session
_TRIAL_IN_SESSION = """
    design TEXT NOT NULL,
    triplet_index INTEGER NOT NULL,
    ordering INTEGER NOT NULL,
    repeat INTEGER NOT NULL,
    session_id TEXT NOT NULL REFERENCES serve_sessions (session_id),
    position INTEGER NOT NULL,"""
_CREATE = f"""
CREATE TABLE IF NOT EXISTS serve_sessions (
    session_id TEXT PRIMARY KEY,
    participant TEXT UNIQUE,
    platform TEXT NOT NULL,
    study_ref TEXT,
    session_ref TEXT,
    n_trials INTEGER NOT NULL CHECK (n_trials >= 1),
    completion_code TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS serve_leases ({_TRIAL_IN_SESSION}
    expires_at REAL NOT NULL,
    PRIMARY KEY (design, triplet_index, ordering, repeat)
);
CREATE INDEX IF NOT EXISTS serve_leases_by_session ON serve_leases (session_id, position);
CREATE TABLE IF NOT EXISTS serve_responses ({_TRIAL_IN_SESSION}
    input TEXT NOT NULL,
    rt_ms REAL NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (design, triplet_index, ordering, repeat)
);
CREATE INDEX IF NOT EXISTS serve_responses_by_session ON serve_responses (session_id);
CREATE TABLE IF NOT EXISTS serve_catch (
    session_id TEXT NOT NULL REFERENCES serve_sessions (session_id),
    catch_index INTEGER NOT NULL,
    before_position INTEGER NOT NULL,
    item_same TEXT NOT NULL,
    item_odd TEXT NOT NULL,
    odd_position INTEGER NOT NULL CHECK (odd_position IN (0, 1, 2)),
    choice INTEGER CHECK (choice IN (0, 1, 2)),
    input TEXT,
    rt_ms REAL,
    received_at TEXT,
    PRIMARY KEY (session_id, catch_index)
);
"""
#: The design name of catch trials' keys (not a safe name, so no study design can have it).
CATCH_DESIGN = "(catch)"

_HELD = "SELECT position FROM serve_leases WHERE session_id = ?"
#: How a participant may answer (recorded with each response).
INPUTS = ("click", "key")


class LeaseError(OddoneoutError):
    """An answer for a key this session does not hold (never leased, expired, answered, another's)."""


@dataclass(frozen=True)
class LeasedTrial:
    """One trial a session holds: its place in the session, its store key and the items in the order shown."""

    position: int
    key: TrialKey
    items: tuple[str, ...]


@dataclass(frozen=True)
class SessionState:
    """Where a session stands.

    Attributes
    ----------
    session_id : str
    n_trials : int
        Trials the session was to answer.
    n_answered : int
        Answers stored.
    trials : tuple of LeasedTrial
        The trials it holds now, by position (empty when done).
    done : bool
        Every trial answered, or nothing left to ask in the whole design.
    completion_code : str or None
        The code to show, once done after at least one answer.
    n_catch : int
        Catch trials the session is asked (beside ``n_trials``).
    n_catch_answered : int
        Catch trials answered.
    """

    session_id: str
    n_trials: int
    n_answered: int
    trials: tuple[LeasedTrial, ...]
    done: bool
    completion_code: str | None
    n_catch: int = 0
    n_catch_answered: int = 0


class LeaseBook:
    """Sessions and leases of one served system, in its store's file.

    Parameters
    ----------
    store : TripletStore
        The system's store, open and owned by this process (the server holds the study folder's
        writer lock): the lease tables live in its file and commit with its judgments.
    designs : sequence of TripletDesign
        The system's designs (:func:`oddoneout.pipeline.collect.study_designs`), leased interleaved in
        proportion to their sizes (:func:`pool_order`).
    lease_seconds : float
        How long a lease lasts after the session's last activity.
    catch_trials : int
        Catch trials asked in each new session among its trials: an item shown twice beside another
        (the odd one out), recorded in ``serve_catch``, never as a judgment. Odd-one-out designs
        only (refused with designs of another trial type).
    refresh : callable, optional
        Called before each lease: new designs when the served designs have grown since (they may
        only grow; :meth:`_check_stored`), else ``None``. The server passes one for an adaptive
        system, so a round recorded by ``oddoneout adapt`` is leased without a restart.
    """

    def __init__(
        self,
        store: TripletStore,
        designs: Sequence[TripletDesign],
        lease_seconds: float,
        catch_trials: int = 0,
        refresh: Callable[[], Sequence[TripletDesign] | None] | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise InputError(f"lease_seconds must be positive, got {lease_seconds}")
        if catch_trials < 0:
            raise InputError(f"catch_trials must be at least 0, got {catch_trials}")
        self.catch_trials = int(catch_trials)
        self.store = store
        self.lease_seconds = float(lease_seconds)
        self.refresh = refresh
        store.connection.executescript(_CREATE)
        self._use_designs(designs)

    def _use_designs(self, designs: Sequence[TripletDesign]) -> None:
        """Lease from ``designs`` (at the start, and when the designs grow while serving)."""
        if self.catch_trials and any(design.trial_type != ODD_ONE_OUT for design in designs):
            raise InputError("catch trials are odd-one-out trials only: set catch_trials = 0 for other trial types")
        self.designs = {design.name: design for design in designs}
        if len(self.designs) != len(designs):
            raise InputError("the designs of a served system need distinct names")
        self._codes = {name: design.key_codes() for name, design in self.designs.items()}
        self._rows = {name: {int(c): row for row, c in enumerate(codes)} for name, codes in self._codes.items()}
        # every design's trials as one pool: global row = the design's offset + its row
        sizes = [len(design) for design in designs]
        self._offsets = dict(zip(self.designs, np.cumsum([0, *sizes[:-1]]).tolist()))
        self._order = pool_order(sizes)
        self._triplets = unordered_codes(designs)
        for design in designs:
            self.store.missing(design)  # a design changed under its stored name is refused here, before serving
        self._check_stored()

    def _check_stored(self) -> None:
        """Refuse stored judgments the designs no longer ask; free leases of trials they no longer ask.

        A design may grow between two runs of the server (more trials, another design: prefix-stable
        keys, :mod:`oddoneout.collect.designs`), never lose trials already answered, which the collect
        stage's checks would refuse as foreign only after more answers were collected.
        """
        for name, count in self.store.design_counts().items():
            codes = self.store.stored_trials(name)[0] if name in self._codes else None
            n_foreign = count if codes is None else int((~np.isin(codes, self._codes[name])).sum())
            if n_foreign:
                raise InputError(
                    f"{self.store.path}: {n_foreign} stored trials of design {name!r} are not in the served designs "
                    "(the design shrank, or was dropped): a running experiment's design may only grow"
                )
        leased = self._query("SELECT design, triplet_index, ordering, repeat FROM serve_leases")
        codes = [int(encode_keys(*(np.array([part]) for part in key[1:]))[0]) for key in leased]
        stale = [key for key, code in zip(leased, codes) if code not in self._rows.get(key[0], {})]
        if stale:
            with self.store.transaction():
                self.store.connection.executemany(
                    "DELETE FROM serve_leases WHERE design = ? AND triplet_index = ? AND ordering = ? AND repeat = ?",
                    stale,
                )

    # --- sessions ---------------------------------------------------------------------------------

    def find_session(self, participant: str) -> str | None:
        """The session of a participant (by the salted hash of their id), if they have one."""
        row = self.store.connection.execute(
            "SELECT session_id FROM serve_sessions WHERE participant = ?", (participant,)
        ).fetchone()
        return None if row is None else str(row[0])

    def has_session(self, session_id: str) -> bool:
        """Whether a session of that id exists."""
        query = "SELECT 1 FROM serve_sessions WHERE session_id = ?"
        return self.store.connection.execute(query, (session_id,)).fetchone() is not None

    def open_session(
        self,
        session_id: str,
        n_trials: int,
        completion_code: str,
        participant: str | None = None,
        platform: str = "none",
        study_ref: str | None = None,
        session_ref: str | None = None,
    ) -> str:
        """Start a session, or return the participant's existing one (one session per participant).

        Returns
        -------
        str
            The session's id: ``session_id``, or the id of the session ``participant`` already has.
        """
        if n_trials < 1:
            raise InputError(f"a session needs at least one trial, got {n_trials}")
        connection = self.store.connection
        with self.store.transaction():
            if participant is not None:
                existing = self.find_session(participant)
                if existing is not None:
                    return existing
            connection.execute(
                "INSERT INTO serve_sessions (session_id, participant, platform, study_ref, session_ref, n_trials, "
                "completion_code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, participant, platform, study_ref, session_ref, n_trials, completion_code, _iso_now()),
            )
            connection.executemany(
                "INSERT INTO serve_catch (session_id, catch_index, before_position, item_same, item_odd, "
                "odd_position) VALUES (?, ?, ?, ?, ?, ?)",
                [(session_id, *row) for row in self._draw_catch(session_id, n_trials)],
            )
        return session_id

    def _draw_catch(self, session_id: str, n_trials: int) -> list[tuple[int, int, str, str, int]]:
        """The session's catch trials: index, the trial each comes before, the items, the odd item's position.

        Drawn from a generator seeded by the session id, spread evenly among the session's trials.
        """
        items = list(self.store.item_ids or sorted({i for d in self.designs.values() for t in d.shown() for i in t}))
        if not self.catch_trials or len(items) < 2:
            return []
        rng = np.random.default_rng(list(session_id.encode()))
        rows = []
        for index in range(self.catch_trials):
            same, odd = rng.choice(len(items), 2, replace=False)
            before = (index + 1) * n_trials // (self.catch_trials + 1)
            rows.append((index, before, items[int(same)], items[int(odd)], int(rng.integers(3))))
        return rows

    # --- leasing ----------------------------------------------------------------------------------

    def lease(self, session_id: str, now: float | None = None) -> SessionState:
        """The session's trials: its live leases renewed, expired ones replaced by keys from the pool.

        Raises
        ------
        LeaseError
            When there is no such session.
        """
        now = time.time() if now is None else now
        grown = self.refresh() if self.refresh is not None else None
        if grown is not None:  # e.g. an adaptive round recorded by `oddoneout adapt` while serving
            self._use_designs(grown)
        connection = self.store.connection
        with self.store.transaction():
            n_trials, finished = self._session(session_id)
            if finished:
                return self._state(session_id, n_trials, now, done=True)
            connection.execute("DELETE FROM serve_leases WHERE expires_at <= ?", (now,))
            self._renew(session_id, now)
            answered = self._answered_positions(session_id)
            held = {int(p) for (p,) in self._query(_HELD, session_id)}
            free = [p for p in range(n_trials) if p not in answered and p not in held]
            if free:
                picked = self._pick(len(free), session_id)
                connection.executemany(
                    "INSERT INTO serve_leases (design, triplet_index, ordering, repeat, session_id, position, "
                    "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*key, session_id, position, now + self.lease_seconds) for key, position in zip(picked, free)],
                )
            # nothing held after leasing: every trial answered, or none left in the whole design
            state = self._state(session_id, n_trials, now, done=None)
            self._finish_if_done(state)
        return state

    def answer(
        self,
        session_id: str,
        key: TrialKey,
        choice: int,
        rt_ms: float,
        input: str,
        now: float | None = None,
        ranking: Sequence[int] | None = None,
    ) -> SessionState:
        """Store one answer of a session, for a key it holds; the session's state after it.

        Parameters
        ----------
        session_id : str
        key : (design, triplet_index, ordering, repeat)
            The trial answered.
        choice : int or None
            The shown position chosen: the odd one out (0, 1, 2) of an odd-one-out trial, the option
            most similar to the reference (1 .. n_options, never the reference at 0) of an anchor
            trial. ``None`` (or the ranking's first) for a ranked trial.
        rt_ms : float
            Response time in milliseconds, from the trial shown to the answer (measured by the page).
        input : {"click", "key"}
            How the participant answered.
        now : float, optional
            Unix time of the answer (default: now).
        ranking : sequence of int, optional
            A ranked trial's answer: the shown positions of the ``n_ranked`` options most similar to
            the reference, most similar first (distinct, each 1 .. n_options).

        Raises
        ------
        LeaseError
            When the session does not hold a live lease on ``key``; nothing is stored.
        InputError
            On an impossible choice, ranking, response time or input (for the trial type of the
            key's design: :func:`check_answer`); nothing is stored.
        """
        design = self.designs.get(key[0])
        # a key of no served design is refused (LeaseError) below; its answer is checked as odd-one-out
        kind = ODD_ONE_OUT if design is None else design.trial_type
        choice, ranking = check_answer(kind, choice, ranking)
        if isinstance(rt_ms, bool) or not isinstance(rt_ms, (int, float)) or not 0 <= rt_ms <= 3_600_000:
            raise InputError(f"rt_ms must be a number of milliseconds in [0, 3600000], got {rt_ms!r}")
        if input not in INPUTS:
            raise InputError(f"input must be one of {INPUTS}, got {input!r}")
        now = time.time() if now is None else now
        received = datetime.fromtimestamp(now, timezone.utc)
        connection = self.store.connection
        if key[0] == CATCH_DESIGN:
            return self._answer_catch(session_id, key, choice, rt_ms, input, now, received)
        with self.store.transaction():
            n_trials, finished = self._session(session_id)
            row = connection.execute(
                "SELECT session_id, position, expires_at FROM serve_leases "
                "WHERE design = ? AND triplet_index = ? AND ordering = ? AND repeat = ?",
                key,
            ).fetchone()
            if row is None or row[0] != session_id:
                raise LeaseError(f"trial {key} is not leased to this session")
            if row[2] <= now:
                raise LeaseError(f"the lease of trial {key} expired")
            position = int(row[1])
            trial = self._trial(key)
            inserted = self.store.add(
                trial,
                [Answer(choice=choice, raw=f"{input} {_answer_text(kind, choice, ranking)}", ranking=ranking)],
                started_at=[received - timedelta(milliseconds=float(rt_ms))],
                finished_at=[received],
            )
            if inserted != 1:  # stored by another writer: refuse, and roll the lease's removal back
                raise LeaseError(f"trial {key} is already stored")
            connection.execute(
                "INSERT INTO serve_responses (design, triplet_index, ordering, repeat, session_id, position, input, "
                "rt_ms, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, session_id, position, input, float(rt_ms), received.isoformat(timespec="microseconds")),
            )
            connection.execute(
                "DELETE FROM serve_leases WHERE design = ? AND triplet_index = ? AND ordering = ? AND repeat = ?", key
            )
            return self._answered(session_id, n_trials, now)

    def _answer_catch(
        self, session_id: str, key: TrialKey, choice: int, rt_ms: float, input: str, now: float, received: datetime
    ) -> SessionState:
        """Record the answer to one of the session's unanswered catch trials (no judgment is stored)."""
        connection = self.store.connection
        with self.store.transaction():
            n_trials, finished = self._session(session_id)
            updated = connection.execute(
                "UPDATE serve_catch SET choice = ?, input = ?, rt_ms = ?, received_at = ? "
                "WHERE session_id = ? AND catch_index = ? AND choice IS NULL AND ? = 0 AND ? = 0",
                (
                    choice,
                    input,
                    float(rt_ms),
                    received.isoformat(timespec="microseconds"),
                    session_id,
                    key[1],
                    *key[2:],
                ),
            ).rowcount
            if finished or updated != 1:
                raise LeaseError(f"trial {key} is not a catch trial this session is asked")
            return self._answered(session_id, n_trials, now)

    def state(self, session_id: str, now: float | None = None) -> SessionState:
        """Where a session stands, changing nothing."""
        now = time.time() if now is None else now
        n_trials, finished = self._session(session_id)
        return self._state(session_id, n_trials, now, done=finished)

    # --- helpers ----------------------------------------------------------------------------------

    def _answered(self, session_id: str, n_trials: int, now: float) -> SessionState:
        """After an answer (inside its transaction): the session's leases renewed, its state, finished if done."""
        self._renew(session_id, now)
        state = self._state(session_id, n_trials, now, done=False)
        self._finish_if_done(state)
        return state

    def _query(self, sql: str, *parameters: object) -> list[tuple]:
        return self.store.connection.execute(sql, parameters).fetchall()

    def _session(self, session_id: str) -> tuple[int, bool]:
        rows = self._query("SELECT n_trials, finished_at FROM serve_sessions WHERE session_id = ?", session_id)
        if not rows:
            raise LeaseError("no such session")
        return int(rows[0][0]), rows[0][1] is not None

    def _answered_positions(self, session_id: str) -> set[int]:
        return {int(p) for (p,) in self._query("SELECT position FROM serve_responses WHERE session_id = ?", session_id)}

    def _renew(self, session_id: str, now: float) -> None:
        self.store.connection.execute(
            "UPDATE serve_leases SET expires_at = ? WHERE session_id = ? AND expires_at > ?",
            (now + self.lease_seconds, session_id, now),
        )

    def _pick(self, n: int, session_id: str) -> list[TrialKey]:
        """The first ``n`` keys in pool order with neither a judgment nor a live lease (expired ones purged),
        each of another unordered triplet than the others and than any the session holds or answered."""
        free = []
        for name, codes in self._codes.items():
            stored, _ = self.store.stored_trials(name)
            leased = self._query("SELECT triplet_index, ordering, repeat FROM serve_leases WHERE design = ?", name)
            taken = [stored]
            if leased:
                taken.append(encode_keys(*np.array(leased, dtype=np.int64).T))
            free.append(~np.isin(codes, np.concatenate(taken)))
        if not free:
            return []
        candidates = self._order[np.concatenate(free)[self._order]]
        seen = self._session_triplets(session_id)
        size = 4 * n + 64  # look at a prefix of the free trials, longer until it holds n new triplets
        while True:
            prefix = candidates[:size]
            triplets = self._triplets[prefix]
            fresh = ~np.isin(triplets, seen)
            _, first = np.unique(triplets[fresh], return_index=True)  # each triplet once: its first in pool order
            if len(first) >= n or size >= len(candidates):
                break
            size *= 4
        picked = prefix[fresh][np.sort(first)[:n]]
        names = list(self.designs)
        bounds = np.array(list(self._offsets.values()))
        design_of = np.searchsorted(bounds, picked, side="right") - 1
        keys: list[TrialKey] = []
        for row, d in zip(picked.tolist(), design_of.tolist()):
            design = self.designs[names[d]]
            r = row - bounds[d]
            keys.append((design.name, int(design.triplet_index[r]), int(design.ordering[r]), int(design.repeat[r])))
        return keys

    def _session_triplets(self, session_id: str) -> np.ndarray:
        """The unordered triplets (:func:`unordered_codes`) of the trials a session holds or answered."""
        rows = self._query(
            "SELECT design, triplet_index, ordering, repeat FROM serve_leases WHERE session_id = ? "
            "UNION ALL SELECT design, triplet_index, ordering, repeat FROM serve_responses WHERE session_id = ?",
            session_id,
            session_id,
        )
        found = []
        for design, *key in rows:
            row = self._rows.get(str(design), {}).get(int(encode_keys(*(np.array([k]) for k in key))[0]))
            if row is not None:
                found.append(self._offsets[str(design)] + row)
        return self._triplets[np.array(found, dtype=np.int64)]

    def _trial(self, key: TrialKey) -> TripletDesign:
        design = self.designs.get(key[0])
        row = None if design is None else self._rows[key[0]].get(int(encode_keys(*(np.array([k]) for k in key[1:]))[0]))
        if row is None:
            raise LeaseError(f"trial {key} is not in the served designs")
        return design.subset([row])

    def _state(self, session_id: str, n_trials: int, now: float, done: bool | None) -> SessionState:
        """The session's live leases and answers; ``done`` also when every trial is answered (``None``: when
        it holds no trial either)."""
        leases = self._query(
            "SELECT position, design, triplet_index, ordering, repeat FROM serve_leases "
            "WHERE session_id = ? AND expires_at > ? ORDER BY position",
            session_id,
            now,
        )
        trials = []
        for position, design, triplet_index, ordering, repeat in leases:
            key = (str(design), int(triplet_index), int(ordering), int(repeat))
            trials.append(LeasedTrial(int(position), key, self._trial(key).shown()[0]))
        n_answered = len(self._answered_positions(session_id))
        catch = self._catch_left(session_id, n_trials) if trials or n_answered else []
        done = bool(done) or (n_answered >= n_trials and not catch) or (done is None and not trials and not catch)
        # a catch trial comes before the trial at its position (after every trial when none is left there)
        order = {id(t): (t.position, 1) for t in trials}
        order.update({id(t): (before, 0) for t, before in catch})
        trials = sorted([*trials, *(t for t, _ in catch)], key=lambda t: order[id(t)])
        code = None
        if done and n_answered:
            code = str(self._query("SELECT completion_code FROM serve_sessions WHERE session_id = ?", session_id)[0][0])
        n_catch, n_catch_answered = self._query(
            "SELECT count(*), count(choice) FROM serve_catch WHERE session_id = ?", session_id
        )[0]
        trials = () if done else tuple(trials)
        return SessionState(session_id, n_trials, n_answered, trials, done, code, int(n_catch), int(n_catch_answered))

    def _catch_left(self, session_id: str, n_trials: int) -> list[tuple[LeasedTrial, int]]:
        """The session's unanswered catch trials and the position each comes before."""
        rows = self._query(
            "SELECT catch_index, before_position, item_same, item_odd, odd_position FROM serve_catch "
            "WHERE session_id = ? AND choice IS NULL ORDER BY catch_index",
            session_id,
        )
        left = []
        for index, before, same, odd, odd_position in rows:
            items = [str(same), str(same)]
            items.insert(int(odd_position), str(odd))
            trial = LeasedTrial(n_trials + int(index), (CATCH_DESIGN, int(index), 0, 0), (items[0], items[1], items[2]))
            left.append((trial, int(before)))
        return left

    def _finish_if_done(self, state: SessionState) -> None:
        """Record the end of a session that is done after answering (one with no answer may yet get trials)."""
        if state.done and state.n_answered:
            self.store.connection.execute(
                "UPDATE serve_sessions SET finished_at = ? WHERE session_id = ? AND finished_at IS NULL",
                (_iso_now(), state.session_id),
            )


def check_answer(trial_type: TrialType, choice: object, ranking: object = None) -> tuple[int, tuple[int, ...] | None]:
    """A participant's answer to a trial of ``trial_type``, checked: its choice and ranking as stored.

    Parameters
    ----------
    trial_type : TrialType
        The trial's type.
    choice : object
        The shown position chosen (from JSON): 0, 1 or 2 for odd-one-out; an option (1 .. n_options,
        never the reference at 0) for anchor trials. A ranked trial may leave it out (``None``) or
        repeat the ranking's first.
    ranking : object
        A ranked trial's answer (from JSON): ``n_ranked`` distinct option positions, most similar
        first. ``None`` for a trial type with one choice (or a one-item list of the choice).

    Returns
    -------
    (int, tuple of int or None)
        The choice and the ranking (``None`` for one choice), as :class:`~oddoneout.agents.base.Answer` takes them.

    Raises
    ------
    InputError
        When the answer is impossible for the trial type: the reference, a position out of range,
        a repeated option or a ranking of another length.
    """

    def position(value: object) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return None
        return int(value)

    lowest = 0 if trial_type == ODD_ONE_OUT else 1  # the reference, at position 0, is never chosen
    allowed = range(lowest, trial_type.n_shown)
    what = f"{trial_type.spec} trials choose shown positions {lowest} to {trial_type.n_shown - 1}"
    if trial_type.n_ranked == 1:
        if ranking is not None and (not isinstance(ranking, list) or ranking != [choice]):
            raise InputError(f"a {trial_type.spec} trial makes one choice: send choice, not a ranking of {ranking!r}")
        found = position(choice)
        if found is None or found not in allowed:
            raise InputError(f"choice must be one of {list(allowed)} ({what}), got {choice!r}")
        return found, None
    k = trial_type.n_ranked
    if not isinstance(ranking, list) or len(ranking) != k:
        raise InputError(f"ranking must be a list of {k} shown positions ({what}), got {ranking!r}")
    ranked = [position(value) for value in ranking]
    if any(p is None or p not in allowed for p in ranked):
        raise InputError(f"ranking must hold shown positions {lowest} to {trial_type.n_shown - 1}, got {ranking!r}")
    if len(set(ranked)) != k:
        raise InputError(f"ranking must name {k} distinct options, got {ranking!r}")
    if choice is not None and position(choice) != ranked[0]:
        raise InputError(f"choice must be the ranking's first ({ranked[0]}), got {choice!r}")
    return int(ranked[0]), tuple(int(p) for p in ranked)  # type: ignore[arg-type]


def _answer_text(trial_type: TrialType, choice: int, ranking: tuple[int, ...] | None) -> str:
    """The raw answer stored: the number pressed or clicked (odd-one-out 1..3; options by their position 1..n)."""
    if trial_type == ODD_ONE_OUT:
        return str(choice + 1)
    return " ".join(str(p) for p in (ranking or (choice,)))


def pool_order(sizes: Sequence[int]) -> np.ndarray:
    """The order in which the trials of several designs are leased: interleaved in proportion to their sizes.

    Parameters
    ----------
    sizes : sequence of int
        Trials of each design; design ``d``'s row ``r`` is global row ``sum(sizes[:d]) + r``.

    Returns
    -------
    ndarray of int64
        The global rows in pool order: row ``r`` of a design of ``n`` trials comes at the fraction
        ``(r + 1/2) / n`` of the pool (ties: the earlier design first), so each design's trials
        keep their order and any stretch of the pool holds each design in proportion to its size.
    """
    if not sizes:
        return np.zeros(0, dtype=np.int64)
    fractions = np.concatenate([(np.arange(n) + 0.5) / n for n in sizes])
    designs = np.repeat(np.arange(len(sizes)), sizes)
    return np.lexsort((designs, fractions)).astype(np.int64)


def unordered_codes(designs: Sequence[TripletDesign]) -> np.ndarray:
    """One int64 per trial of the designs (global rows, as :func:`pool_order`) naming its unordered triplet.

    Two trials get the same code exactly when they show the same items, in any order and whatever
    their design, ordering or repeat (an anchor trial's reference included: the same three items
    with another reference count as the same set, so a session is not shown them twice).
    """
    if not designs or not sum(len(design) for design in designs):
        return np.zeros(0, dtype=np.int64)
    width = max(design.items.shape[1] for design in designs)
    # designs showing fewer items are padded with "" (no item id is empty), so each shown set stays apart
    items = np.concatenate(
        [np.pad(d.items.astype(object), ((0, 0), (0, width - d.items.shape[1])), constant_values="") for d in designs]
    ).astype(str)
    _, inverse = np.unique(items, return_inverse=True)
    indices = np.sort(inverse.reshape(items.shape).astype(np.int64), axis=1)
    if width == 3:  # the codes of triplets as they always were
        n = int(indices.max()) + 1
        return (indices[:, 0] * n + indices[:, 1]) * n + indices[:, 2]
    _, codes = np.unique(indices, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def _iso_now() -> str:
    return utc_now().isoformat(timespec="microseconds")
