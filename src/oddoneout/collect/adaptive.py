"""Adaptive collection in rounds: fit on the answers so far, ask the most informative trials next, repeat.

An :class:`AdaptivePlan` asks a system, in this order:

* the **holdout**: ``holdout`` random base trials (design :data:`HOLDOUT_DESIGN`), never used to
  choose a trial, the test set of the fitted embedding (adaptively chosen trials are not a fair
  test set: they are the ones the model was least sure about);
* **round 0**: ``initial`` random base trials, the first trials of design :data:`ADAPTIVE_DESIGN`.
  Holdout and round 0 are one random draw without repetition (holdout first, so they share no
  base trial and the holdout does not depend on the size of round 0), seeded by ``round_seed(0)``;
* **rounds 1..n_rounds**: ``round_size`` base trials each, chosen by
  :func:`~oddoneout.collect.informativeness.select_trials` (expected information gain under the
  posterior of a VICE model fitted on every ``ok`` answer of the store but the holdout's), never
  a base trial already in the holdout or in an earlier round.

Every base trial is shown in ``n_orderings`` counterbalanced orderings, as
:func:`~oddoneout.collect.designs.listed_design` lays them out; a round's ``triplet_index`` values
follow the previous round's, so the keys ``(adaptive, triplet_index, ordering, repeat)`` are
unique over the rounds and the store resumes them like any design's.

Round 0 and the holdout are a function of the plan (like any random design). A selected round is
recorded in the store's file *before* any of its trials is asked, in one transaction: its row of
``adaptive_rounds`` (criterion, selecting model's hash, seed, how many answers the model was fitted
on and the hash of those answers, selection time) and one row per base trial in ``adaptive_trials``
(its ``triplet_index``, rank in the selection, item ids, score). The plan's settings are recorded
with the first round (``adaptive_plan``) and a store recorded under another plan is refused. On
resume the recorded rounds are read back, never selected again, and only their unanswered keys are
asked; the seed of round ``r`` derives from the plan's seed and ``r`` (:meth:`AdaptivePlan.round_seed`).

Runners: :func:`collect_adaptive` (local agents, round after round with
:func:`~oddoneout.collect.runner.collect`) and :func:`collect_adaptive_remote` (remote agents,
:func:`~oddoneout.collect.async_runner.collect_remote`): round ``r + 1`` is selected in a worker
thread as soon as every trial of round ``r`` has been handed to a request, on the answers stored
at that moment (their number is recorded), while round ``r``'s last requests complete. A served
system grows by :func:`adapt_served` (``oddoneout adapt``), one round per call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.collect.designs import TripletDesign, listed_design, random_design
from oddoneout.collect.informativeness import CRITERIA, Selection, base_rows, fit_selection_model, select_trials
from oddoneout.collect.store import TripletStore, connect_read_only, has_table, read_trial_set, utc_now
from oddoneout.errors import InputError
from oddoneout.progress import console, progress_enabled
from oddoneout.triplets import ODD_ONE_OUT, TrialSet, TrialType

logger = logging.getLogger(__name__)

#: Design of round 0 and of every selected round.
ADAPTIVE_DESIGN = "adaptive"
#: Design of the held-out random trials (the test set; never used for selection).
HOLDOUT_DESIGN = "holdout"
#: Tag mixed into round seeds, so they differ from the seeds of the study's other designs.
_SEED_STREAM = 0xADA

_CREATE = """
CREATE TABLE IF NOT EXISTS adaptive_plan (id INTEGER PRIMARY KEY CHECK (id = 0), plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS adaptive_rounds (
    round INTEGER PRIMARY KEY CHECK (round >= 1),
    first_index INTEGER NOT NULL,
    n_trials INTEGER NOT NULL CHECK (n_trials >= 1),
    criterion TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    n_answers INTEGER NOT NULL,
    answers_hash TEXT NOT NULL,
    selection_seconds REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS adaptive_trials (
    triplet_index INTEGER PRIMARY KEY,
    round INTEGER NOT NULL REFERENCES adaptive_rounds (round),
    rank INTEGER NOT NULL,
    items TEXT NOT NULL,
    score REAL NOT NULL
);
"""


@dataclass(frozen=True)
class AdaptivePlan:
    """What an adaptive collection asks (see the module docstring).

    Parameters
    ----------
    item_ids : tuple of str
        The vocabulary (the store's).
    seed : int
        The study seed; round ``r`` is seeded by :meth:`round_seed`.
    n_rounds : int
        Selected rounds after round 0 (>= 1).
    round_size : int
        Base trials selected per round.
    initial : int
        Random base trials of round 0 (the first model is fitted on them).
    holdout : int
        Random base trials held out for evaluation.
    criterion : str
        Key of :data:`~oddoneout.collect.informativeness.CRITERIA`.
    n_orderings : int
        Counterbalanced orderings each base trial is shown in.
    trial_type : TrialType
    """

    item_ids: tuple[str, ...]
    seed: int
    n_rounds: int
    round_size: int
    initial: int
    holdout: int
    criterion: str = "information_gain"
    n_orderings: int = 1
    trial_type: TrialType = ODD_ONE_OUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_ids", tuple(str(item) for item in self.item_ids))
        if self.criterion not in CRITERIA:
            raise InputError(f"unknown adaptive criterion {self.criterion!r}; choose one of {sorted(CRITERIA)}")
        for name, low in (("n_rounds", 1), ("round_size", 1), ("initial", 1), ("holdout", 1), ("n_orderings", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise InputError(f"adaptive plan: {name} must be an integer >= {low}, got {value!r}")

    @classmethod
    def from_budget(
        cls,
        item_ids: Sequence[str],
        n_triplets: int,
        seed: int,
        *,
        n_rounds: int,
        holdout: int,
        round_size: int = 0,
        **options: object,
    ) -> "AdaptivePlan":
        """A plan spending ``n_triplets`` base trials in all: holdout, round 0 and ``n_rounds`` rounds.

        ``round_size = 0`` splits what the holdout leaves into ``n_rounds + 1`` equal rounds (round 0
        takes the remainder); otherwise round 0 takes what the holdout and the rounds leave.
        ``options`` are the plan's other fields.
        """
        left = n_triplets - holdout
        size = round_size or left // (n_rounds + 1)
        initial = left - n_rounds * size
        if size < 1 or initial < 1:
            raise InputError(
                f"adaptive selection: n_triplets = {n_triplets} cannot hold a holdout of {holdout}, a random first "
                f"round and {n_rounds} rounds of {size} trials: raise n_triplets, or lower adaptive_rounds, "
                "adaptive_round_size or holdout_triplets"
            )
        return cls(tuple(item_ids), seed, n_rounds, size, initial, holdout, **options)

    @property
    def n_triplets(self) -> int:
        """Base trials asked in all (holdout included)."""
        return self.holdout + self.initial + self.n_rounds * self.round_size

    def round_seed(self, round_number: int) -> int:
        """Seed of round ``round_number`` (its draw or selection, its model, its orderings)."""
        state = np.random.SeedSequence([self.seed, _SEED_STREAM, round_number]).generate_state(1)
        return int(state[0])

    def record(self) -> str:
        """The settings a store's recorded rounds depend on, as JSON (``n_rounds`` may grow later)."""
        fields = asdict(self)
        del fields["item_ids"], fields["n_rounds"]
        fields["trial_type"] = self.trial_type.spec
        fields["n_items"] = len(self.item_ids)
        return json.dumps(fields, sort_keys=True)

    def first_designs(self) -> tuple[TripletDesign, TripletDesign]:
        """The holdout design and round 0 (random, from :meth:`round_seed` of 0)."""
        drawn = random_design(
            self.item_ids,
            self.holdout + self.initial,
            seed=self.round_seed(0),
            n_orderings=self.n_orderings,
            name=HOLDOUT_DESIGN,
            trial_type=self.trial_type,
        )
        held = drawn.triplet_index < self.holdout
        first = drawn.subset(~held)
        round_0 = TripletDesign(
            ADAPTIVE_DESIGN,
            first.items,
            first.triplet_index - self.holdout,
            first.ordering,
            first.repeat,
            first.seed,
            first.trial_type,
        )
        return drawn.subset(held), round_0

    def round_design(self, recorded: "RecordedRound") -> TripletDesign:
        """The trials of a selected round: its base trials in counterbalanced orderings, keys after the last round's."""
        listed = listed_design(
            self.item_ids,
            recorded.items,
            seed=recorded.seed,
            n_orderings=self.n_orderings,
            name=ADAPTIVE_DESIGN,
            trial_type=self.trial_type,
        )
        return TripletDesign(
            ADAPTIVE_DESIGN,
            listed.items,
            listed.triplet_index + recorded.first_index,
            listed.ordering,
            listed.repeat,
            listed.seed,
            listed.trial_type,
        )

    def adaptive_design(self, store_path: str | Path | None = None) -> TripletDesign:
        """Design :data:`ADAPTIVE_DESIGN` as far as it is known: round 0 and every round recorded in the store."""
        parts = [self.first_designs()[1]]
        if store_path is not None and Path(store_path).is_file():
            parts += [self.round_design(recorded) for recorded in recorded_rounds(store_path, self)]
        if len(parts) == 1:
            return parts[0]
        return TripletDesign(
            ADAPTIVE_DESIGN,
            np.concatenate([part.items for part in parts]),
            np.concatenate([part.triplet_index for part in parts]),
            np.concatenate([part.ordering for part in parts]),
            np.concatenate([part.repeat for part in parts]),
            self.seed,
            self.trial_type,
        )


@dataclass(frozen=True)
class RecordedRound:
    """One selected round as the store records it (``adaptive_rounds`` and its ``adaptive_trials``)."""

    round: int
    first_index: int
    items: np.ndarray  # (n, n_shown) item ids of the base trials, best first
    scores: np.ndarray
    criterion: str
    model_hash: str
    seed: int
    n_answers: int
    answers_hash: str
    selection_seconds: float
    created_at: str


def _check_plan(connection: sqlite3.Connection, path: Path, plan: AdaptivePlan) -> None:
    """Refuse a store whose rounds were recorded under another plan, or whose vocabulary is not the plan's."""
    if has_table(connection, "adaptive_plan"):
        row = connection.execute("SELECT plan FROM adaptive_plan").fetchone()
        if row is not None and row[0] != plan.record():
            raise InputError(
                f"{path}: its adaptive rounds were selected under other settings ({row[0]}), the config asks "
                f"{plan.record()}: only adaptive_rounds may change during a run; collect into a new --out"
            )
    ids = connection.execute("SELECT value FROM meta WHERE key = 'item_ids'").fetchone()
    if ids is not None and tuple(json.loads(ids[0])) != plan.item_ids:
        raise InputError(f"{path}: the store's vocabulary is not the adaptive plan's")


def n_recorded_rounds(connection: sqlite3.Connection) -> int:
    """How many rounds a store's connection sees recorded (0 before the first)."""
    if not has_table(connection, "adaptive_rounds"):
        return 0
    return int(connection.execute("SELECT COUNT(*) FROM adaptive_rounds").fetchone()[0])


def recorded_rounds(store_path: str | Path, plan: AdaptivePlan) -> list[RecordedRound]:
    """The rounds recorded in a store, in order (read-only; the store checked against ``plan``)."""
    path = Path(store_path)
    connection = connect_read_only(path)
    try:
        _check_plan(connection, path, plan)
        if not has_table(connection, "adaptive_rounds"):
            return []
        rounds = connection.execute(
            "SELECT round, first_index, criterion, model_hash, seed, n_answers, answers_hash, selection_seconds, "
            "created_at FROM adaptive_rounds ORDER BY round"
        ).fetchall()
        trials = connection.execute("SELECT round, items, score FROM adaptive_trials ORDER BY round, rank").fetchall()
    finally:
        connection.close()
    by_round: dict[int, list[tuple[list[str], float]]] = {}
    for number, items, score in trials:
        by_round.setdefault(int(number), []).append((json.loads(items), float(score)))
    out = []
    for number, first_index, criterion, model, seed, n_answers, answers, seconds, created in rounds:
        rows = by_round[int(number)]
        out.append(
            RecordedRound(
                round=int(number),
                first_index=int(first_index),
                items=np.array([row[0] for row in rows], dtype=str),
                scores=np.array([row[1] for row in rows]),
                criterion=str(criterion),
                model_hash=str(model),
                seed=int(seed),
                n_answers=int(n_answers),
                answers_hash=str(answers),
                selection_seconds=float(seconds),
                created_at=str(created),
            )
        )
    return out


def _record(
    store_path: str | Path,
    plan: AdaptivePlan,
    number: int,
    first_index: int,
    selection: Selection,
    train: TrialSet,
    seconds: float,
) -> RecordedRound:
    """Record a selected round (and the plan, with the first one) in one transaction."""
    ids = np.asarray(plan.item_ids)
    items = ids[selection.indices]
    created = utc_now().isoformat(timespec="microseconds")
    recorded = RecordedRound(
        number,
        first_index,
        items,
        selection.scores,
        selection.criterion,
        selection.model_hash,
        selection.seed,
        len(train),
        train.hash(),
        seconds,
        created,
    )
    with TripletStore.open(store_path) as store:
        store.connection.executescript(_CREATE)  # before the transaction: executescript commits
        with store.transaction():
            _check_plan(store.connection, store.path, plan)
            last = store.connection.execute("SELECT coalesce(max(round), 0) FROM adaptive_rounds").fetchone()[0]
            if last != number - 1:
                raise InputError(f"{store.path}: round {number} cannot follow recorded round {last} (another process?)")
            store.connection.execute("INSERT OR IGNORE INTO adaptive_plan (id, plan) VALUES (0, ?)", (plan.record(),))
            store.connection.execute(
                "INSERT INTO adaptive_rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    first_index,
                    len(items),
                    recorded.criterion,
                    recorded.model_hash,
                    recorded.seed,
                    recorded.n_answers,
                    recorded.answers_hash,
                    seconds,
                    created,
                ),
            )
            store.connection.executemany(
                "INSERT INTO adaptive_trials (triplet_index, round, rank, items, score) VALUES (?, ?, ?, ?, ?)",
                [
                    (first_index + rank, number, rank, json.dumps(row.tolist()), float(score))
                    for rank, (row, score) in enumerate(zip(items, selection.scores))
                ],
            )
    return recorded


def _base_indices(items: np.ndarray, plan: AdaptivePlan) -> np.ndarray:
    """Item-id rows as base trials of vocabulary indices."""
    indices = pd.Index(plan.item_ids).get_indexer(np.asarray(items).ravel()).reshape(-1, plan.trial_type.n_shown)
    return base_rows(indices, plan.trial_type)


def training_trials(
    store_path: str | Path, plan: AdaptivePlan, excluded: Mapping[str, np.ndarray] | None = None
) -> TrialSet:
    """Every ``ok`` answer of the store but the holdout's, over the plan's vocabulary: what a round is selected on.

    ``excluded``: more judgments to leave out, as packed keys by design (a served system's
    excluded participant sessions, :func:`oddoneout.collect.quality.fit_exclusions`).
    """
    holdout = plan.first_designs()[0]
    leave_out = {name: np.asarray(codes, dtype=np.int64) for name, codes in (excluded or {}).items()}
    leave_out[HOLDOUT_DESIGN] = holdout.key_codes()
    trials = read_trial_set(store_path, exclude=leave_out)
    return TrialSet(tuple(part.reindex(plan.item_ids) for part in trials.parts))


def select_round(
    store_path: str | Path, plan: AdaptivePlan, number: int, excluded: Mapping[str, np.ndarray] | None = None
) -> RecordedRound:
    """Fit the selecting model on the store's answers, choose round ``number`` and record it (before it is asked).

    Raises
    ------
    InputError
        When rounds before ``number - 1`` are not recorded, or no answer is ``ok`` yet.
    """
    started = time.perf_counter()
    earlier = recorded_rounds(store_path, plan)
    holdout, round_0 = plan.first_designs()
    seed = plan.round_seed(number)
    train = training_trials(store_path, plan, excluded)
    model = fit_selection_model(train, seed=seed)
    asked = [_base_indices(design.items, plan) for design in (holdout, round_0)]
    asked += [_base_indices(recorded.items, plan) for recorded in earlier]
    selection = select_trials(
        model,
        len(plan.item_ids),
        plan.round_size,
        trial_type=plan.trial_type,
        criterion=plan.criterion,
        seed=seed,
        exclude=np.concatenate(asked),
    )
    if not len(selection.indices):
        raise InputError(f"adaptive round {number}: every candidate trial is asked already (too few items left)")
    if len(selection.indices) < plan.round_size:
        logger.warning(
            "adaptive round %d: only %d of %d trials could be selected (few unasked trials left)",
            number,
            len(selection.indices),
            plan.round_size,
        )
    first_index = plan.initial + sum(len(recorded.items) for recorded in earlier)
    return _record(store_path, plan, number, first_index, selection, train, time.perf_counter() - started)


def _say_round(recorded: RecordedRound, n_rounds: int, resumed: bool) -> None:
    """One progress line per round: round, answers used, selection time, model hash prefix."""
    how = "recorded earlier" if resumed else f"selected in {recorded.selection_seconds:.1f} s"
    line = (
        f"adaptive round {recorded.round}/{n_rounds}: {len(recorded.items)} trials {how} on {recorded.n_answers:,} "
        f"answers ({recorded.criterion}, model {recorded.model_hash[:10]}, seed {recorded.seed})"
    )
    logger.info(line)
    if progress_enabled():
        console.print(line)


class AdaptiveRun:
    """Hands out an adaptive plan's rounds for one store: the recorded ones first, then new selections.

    Parameters
    ----------
    plan : AdaptivePlan
    store_path : path
        An existing store (its vocabulary the plan's); refused when recorded under another plan.
    """

    def __init__(self, plan: AdaptivePlan, store_path: str | Path) -> None:
        self.plan, self.store_path = plan, Path(store_path)
        self.recorded = recorded_rounds(self.store_path, plan)
        self.next_round = 1

    def first_designs(self) -> list[TripletDesign]:
        """The holdout and round 0, asked before any selection."""
        return list(self.plan.first_designs())

    def next_design(self) -> TripletDesign | None:
        """The next round's trials (recorded earlier, or selected and recorded now); ``None`` after the last.

        Rounds recorded beyond ``plan.n_rounds`` (a run planned longer) are handed out too.
        """
        number = self.next_round
        if number > max(self.plan.n_rounds, len(self.recorded)):
            return None
        resumed = number <= len(self.recorded)
        recorded = self.recorded[number - 1] if resumed else select_round(self.store_path, self.plan, number)
        if not resumed:
            self.recorded.append(recorded)
        _say_round(recorded, max(self.plan.n_rounds, len(self.recorded)), resumed)
        self.next_round += 1
        return self.plan.round_design(recorded)


def collect_adaptive(
    plan: AdaptivePlan,
    agent: object,
    store: TripletStore,
    extra_designs: Sequence[TripletDesign] = (),
    batch_size: int = 10_000,
    progress: bool = True,
) -> list:
    """Collect an adaptive plan with a local agent: holdout, round 0 and ``extra_designs``, then round after round.

    Round ``r + 1`` is selected once round ``r`` is fully answered (on every answer then stored).

    Returns
    -------
    list of CollectionSummary
        One per :func:`~oddoneout.collect.runner.collect` call (the first designs, then each round).
    """
    from oddoneout.collect.runner import collect

    run = AdaptiveRun(plan, store.path)
    summaries = [collect([*run.first_designs(), *extra_designs], agent, store, batch_size, progress)]
    while (design := run.next_design()) is not None:
        summaries.append(collect(design, agent, store, batch_size, progress))
    return summaries


def collect_adaptive_remote(
    plan: AdaptivePlan,
    agents: object,
    store: TripletStore,
    extra_designs: Sequence[TripletDesign] = (),
    **options: object,
):
    """Collect an adaptive plan with remote agents, many requests in flight (:func:`collect_remote`).

    The holdout, round 0 and ``extra_designs`` are queued first. Whenever the queue runs dry (every
    trial handed to a request), the next round is selected in a worker thread on the answers stored
    at that moment while the requests in flight complete, recorded, and queued. Budgets
    (``max_requests``, ``max_tokens``) and Ctrl-C apply to the whole run; a selection in progress
    when it stops finishes (and is recorded) before the call returns.

    Returns
    -------
    CollectionSummary
    """
    from oddoneout.collect.async_runner import collect_remote

    run = AdaptiveRun(plan, store.path)

    async def next_designs() -> list[TripletDesign] | None:
        design = await asyncio.to_thread(run.next_design)
        return None if design is None else [design]

    return collect_remote([*run.first_designs(), *extra_designs], agents, store, next_designs=next_designs, **options)


def adapt_served(
    plan: AdaptivePlan, store_path: str | Path, excluded: Mapping[str, np.ndarray] | None = None
) -> RecordedRound | None:
    """Select and record the next round of a served system (people answer in a browser).

    The round is the one after the last recorded; it is selected on the answers stored now. A
    server running on the same folder leases it from its next lease on (it checks the recorded
    rounds before each: :func:`oddoneout.serve.experiment.design_refresh`). ``excluded``: the
    judgments of excluded participant sessions (:func:`oddoneout.collect.quality.fit_exclusions`),
    left out of the selecting model's data as the fit leaves them out.

    Returns
    -------
    RecordedRound or None
        ``None`` when every planned round is recorded already.
    """
    recorded = recorded_rounds(store_path, plan)
    if len(recorded) >= plan.n_rounds:
        return None
    new = select_round(store_path, plan, len(recorded) + 1, excluded)
    _say_round(new, plan.n_rounds, resumed=False)
    return new
