"""The resumable synchronous runner: ask an agent the trials a store still lacks, batch by batch.

Failure policy: per-trial failures are the agent's to report, as answers with a status other
than ``ok`` (unparseable, refused, timeout...); they are stored like any judgment. An exception
raised by ``agent.judge`` is not turned into stored ``error`` rows: for a local agent it means a
bug or bad input, the same for every later batch, and stored errors would never be asked again.
The runner re-raises it (with a note naming the failed rows) after every earlier batch has been
committed, so fixing the cause and calling :func:`collect` again resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from oddoneout.agents.base import Agent, check_answers_trial_type, judge_trials
from oddoneout.collect.cost import RunMeter
from oddoneout.collect.designs import TripletDesign
from oddoneout.collect.store import TripletStore, utc_now
from oddoneout.errors import InputError
from oddoneout.progress import make_progress

logger = logging.getLogger(__name__)


@dataclass
class CollectionSummary:
    """What one :func:`collect` call did.

    Attributes
    ----------
    n_design : int
        Trials in the design(s).
    n_already_stored : int
        Trials of the design(s) found in the store before asking.
    n_asked : int
        Trials asked in this call (and stored, unless already there).
    counts : dict of str to int
        Judgments by status in the whole store after the call.
    seconds : float
        Wall time of the call.
    n_duplicates : int
        Asked trials that another writer had stored in the meantime (kept, not replaced).
    n_requests : int
        Requests sent (agent calls, retries included); filled by the asynchronous runner.
    n_retries : int
        Requests that failed transiently and were tried again (asynchronous runner).
    tokens : int
        Tokens reported by the answers stored in this call (asynchronous runner).
    stopped : str or None
        Why the call stopped before asking every missing trial: ``"max_requests"``,
        ``"max_tokens"`` or ``"interrupted"``; ``None`` when it did not stop early.
    """

    n_design: int
    n_already_stored: int
    n_asked: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    n_duplicates: int = 0
    n_requests: int = 0
    n_retries: int = 0
    tokens: int = 0
    stopped: str | None = None

    @property
    def requests_per_second(self) -> float:
        """Requests sent per second of the call."""
        return self.n_requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def judgments_per_second(self) -> float:
        """Trials asked and stored per second of the call."""
        return self.n_asked / self.seconds if self.seconds > 0 else 0.0

    @property
    def n_missing(self) -> int:
        """Trials of the design(s) still not stored after the call."""
        return self.n_design - self.n_already_stored - self.n_asked + self.n_duplicates


def as_designs(design: TripletDesign | Sequence[TripletDesign], caller: str) -> list[TripletDesign]:
    """``design`` as a non-empty list of designs; an InputError naming ``caller`` otherwise."""
    designs = [design] if isinstance(design, TripletDesign) else list(design)
    if not designs or not all(isinstance(d, TripletDesign) for d in designs):
        raise InputError(f"{caller} needs a TripletDesign or a non-empty sequence of them")
    return designs


def check_agent_answers(agent: Any, designs: Sequence[TripletDesign]) -> None:
    """Raise an InputError (one line) unless ``agent`` answers the trial type of every design."""
    for design in designs:
        try:
            check_answers_trial_type(agent, design.trial_type)
        except InputError as exc:
            raise InputError(f"design {design.name!r}: {exc}") from None


def check_agent_fits_store(store: TripletStore, name: str, model: str) -> None:
    """Raise an InputError unless the agent ``name`` (model ``model``) is the one ``store`` holds answers of."""
    if name != store.agent or model != store.model:
        raise InputError(
            f"{store.path}: store of agent {store.agent!r} (model {store.model!r}) cannot take answers of "
            f"agent {name!r} (model {model!r})"
        )


def missing_designs(designs: list[TripletDesign], store: TripletStore) -> tuple[list[TripletDesign], int]:
    """The trials of each design that ``store`` lacks, and how many trials of the designs it already holds."""
    todo = [store.missing(d) for d in designs]
    return todo, sum(len(d) for d in designs) - sum(len(d) for d in todo)


def record_run(meter: RunMeter, store: TripletStore, runner: str, n_asked: int, **counters: Any) -> None:
    """Record a collecting call in the store (:meth:`RunMeter.record`); a failure to is logged, never raised.

    Called while the call's own outcome (perhaps an exception) is on its way out: the cost
    accounting must not hide it.
    """
    try:
        meter.record(store, runner, n_asked, **counters)
    except Exception as exc:  # noqa: BLE001 (the accounting is secondary to the collection)
        logger.warning("%s: the collecting call could not be recorded for the cost accounting: %s", store.path, exc)


def summarize_call(
    store: TripletStore, started: float, n_design: int, n_already_stored: int, n_asked: int, **counters: Any
) -> CollectionSummary:
    """The summary of a call begun at ``started`` (:func:`time.perf_counter`), with the store's counts now."""
    return CollectionSummary(
        n_design=n_design,
        n_already_stored=n_already_stored,
        n_asked=n_asked,
        counts=store.counts(),
        seconds=time.perf_counter() - started,
        **counters,
    )


def collect(
    design: TripletDesign | Sequence[TripletDesign],
    agent: Agent,
    store: TripletStore,
    batch_size: int = 10_000,
    progress: bool = True,
    max_requests: int | None = None,
) -> CollectionSummary:
    """Ask ``agent`` every trial of ``design`` that ``store`` lacks, and store the answers.

    Parameters
    ----------
    design : TripletDesign or sequence of TripletDesign
        The trials to collect (several designs are collected one after the other, e.g. the
        list returned by :func:`~oddoneout.collect.designs.concat_designs`).
    agent : Agent
        Answers batches of shown trials. Its ``name`` and ``model`` must match the store's, and
        it must answer the trial type of every design (its ``trial_types``), which is passed
        with each batch of trials other than odd-one-out
        (:func:`~oddoneout.agents.base.judge_trials`).
    store : TripletStore
        Where answers go; it decides what is missing.
    batch_size : int
        Trials per ``agent.judge`` call and per transaction; a killed process loses at most
        the batch in flight.
    progress : bool
        Show a progress bar (rate, ETA) on stderr (unless ``ODDONEOUT_PROGRESS=0``).
    max_requests : int, optional
        Ask at most this many trials in this call (the first missing ones, in design order).

    Returns
    -------
    CollectionSummary

    Raises
    ------
    Exception
        Whatever ``agent.judge`` raised, after committing every earlier batch; a note on the
        exception names the failed batch and how many trials were stored before it.
    """
    started = time.perf_counter()
    designs = as_designs(design, "collect")
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    if max_requests is not None and max_requests < 0:
        raise InputError(f"max_requests must be >= 0, got {max_requests}")
    check_agent_fits_store(store, agent.name, agent.model)
    check_agent_answers(agent, designs)

    todo, n_already_stored = missing_designs(designs, store)
    n_design = sum(len(d) for d in designs)
    if max_requests is not None:
        budget = max_requests
        for i, remaining in enumerate(todo):
            todo[i] = remaining.subset(slice(0, budget))
            budget -= len(todo[i])
    n_to_ask = sum(len(d) for d in todo)

    n_asked = 0
    meter = RunMeter(uses_gpu=bool(getattr(agent, "uses_gpu", False)))
    asking_since = time.perf_counter()
    duplicates_before = store.n_duplicates
    bar = make_progress() if progress and n_to_ask else None
    if bar is not None:
        bar.start()
        task = bar.add_task(f"collect {agent.name}", total=n_to_ask, unit="trials", info="")
    try:
        for remaining in todo:
            for start in range(0, len(remaining), batch_size):
                batch = remaining.subset(slice(start, start + batch_size))
                asked_at = utc_now()
                judging_since = time.perf_counter()
                try:
                    answers = judge_trials(agent, batch.shown(), batch.keys(), batch.trial_type)
                except Exception as exc:
                    exc.add_note(
                        f"collect: agent {agent.name!r} failed on {len(batch)} trials of design {batch.name!r} "
                        f"(triplet_index {batch.triplet_index[0]}..{batch.triplet_index[-1]}); "
                        f"{n_asked} trials asked before it are stored in {store.path}; call collect again to resume"
                    )
                    raise
                finally:
                    meter.busy(time.perf_counter() - judging_since)
                answered_at = utc_now()
                if len(answers) != len(batch):
                    raise RuntimeError(f"agent {agent.name!r} returned {len(answers)} answers for {len(batch)} trials")
                store.add(
                    batch,
                    answers,
                    asked_at,
                    answered_at,
                    prompt_hash=agent.prompt_hash,
                    agent=agent.name,
                    model=agent.model,
                )
                n_asked += len(batch)
                if bar is not None:
                    rate = n_asked / max(time.perf_counter() - asking_since, 1e-9)
                    bar.update(task, advance=len(batch), info=f"{rate:,.0f}/s")
    finally:
        if bar is not None:
            bar.stop()
        if n_to_ask:
            record_run(meter, store, "collect", n_asked, n_requests=n_asked)
    return summarize_call(
        store, started, n_design, n_already_stored, n_asked, n_duplicates=store.n_duplicates - duplicates_before
    )
