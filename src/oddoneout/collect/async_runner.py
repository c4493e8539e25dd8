"""The resumable asynchronous runner: many concurrent requests to remote agents, retried, batched into the store.

One shared queue holds every trial the store lacks, in design order. Each agent (one per
endpoint) runs ``concurrency`` workers that take the next trial from the queue, so a faster
endpoint takes more trials. A request that fails transiently (the agent raises
:class:`~oddoneout.agents.base.RetryableError`, or no answer comes within ``request_timeout``)
is tried again by the same worker after an exponential backoff with full jitter, never sooner
than the server's ``Retry-After``; once the retries are spent the trial is stored with the
error's status (``error`` or ``timeout``) and is not asked again. Answers are written in
batches (every ``flush_every`` answers or ``flush_seconds``), one transaction each, with each
trial's own start and finish times, by a writer thread with its own connection to the store, so
commits never stall the requests in flight.

Failure policy, as in :func:`oddoneout.collect.runner.collect`: any other exception raised by an
agent is a bug or bad input; the runner stops issuing requests, cancels those in flight, stores
every answer already received and re-raises it with a note. Trials in flight when the runner
stops (failure, budget, interrupt) are not stored: calling again asks them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import queue
import random
import signal
import threading
import time
from datetime import datetime
from typing import Any, Awaitable, Callable, Sequence

from oddoneout.agents.base import Answer, AsyncAgent, RetryableError, ajudge_trial
from oddoneout.collect.cost import RunMeter
from oddoneout.collect.designs import TripletDesign
from oddoneout.collect.runner import (
    CollectionSummary,
    as_designs,
    check_agent_answers,
    check_agent_fits_store,
    missing_designs,
    record_run,
    summarize_call,
)
from oddoneout.collect.store import TripletStore, utc_now
from oddoneout.errors import InputError
from oddoneout.progress import make_progress

logger = logging.getLogger(__name__)

#: Source of more designs while collecting (see ``next_designs`` of :func:`collect_async`).
NextDesigns = Callable[[], Awaitable[Sequence[TripletDesign] | None]]

#: Values of :attr:`CollectionSummary.stopped` set by this runner.
STOP_REASONS = ("max_requests", "max_tokens", "interrupted")


class _RateLimiter:
    """At most ``rate`` requests per second over all workers: consecutive grants ``1 / rate`` s apart.

    A token bucket holding one token (no bursts). Waiters queue on a lock and each grant is
    timed from the previous grant's actual time, so a late wake-up never lets the next
    request follow too closely.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.last = -float("inf")
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            wait = self.last + self.interval - time.monotonic()
            while wait > 0:
                await asyncio.sleep(wait)
                wait = self.last + self.interval - time.monotonic()
            self.last = time.monotonic()


class _Writer:
    """Stores batches of answers from a thread of its own, so commits (fsync) never stall the event loop.

    The thread opens its own connection to the store's file (SQLite connections belong to the
    thread that made them); every batch is one :meth:`TripletStore.add` transaction. The first
    error stops the writing and is raised to the event loop on the next :meth:`submit` or at
    :meth:`close`.
    """

    def __init__(self, store: TripletStore) -> None:
        self.batches: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.n_duplicates = 0
        self.thread = threading.Thread(
            target=self._write, args=(store.path, store.agent, store.model), name="triplet-store-writer", daemon=True
        )
        self.thread.start()

    def _write(self, path: Any, agent: str, model: str) -> None:
        try:
            store = TripletStore(path, agent, model)
        except BaseException as exc:  # reported to the event loop
            self.error = exc
            store = None
        try:
            while (batch := self.batches.get()) is not None:
                if store is None or self.error is not None:
                    continue  # drop what follows a failure: the loop is told and stops
                try:
                    store.add(*batch)
                except BaseException as exc:
                    self.error = exc
        finally:
            if store is not None:
                self.n_duplicates = store.n_duplicates
                store.close()

    def submit(self, *batch: Any) -> None:
        """Queue one batch (the arguments of :meth:`TripletStore.add`)."""
        if self.error is not None:
            raise self.error
        self.batches.put(batch)

    def close(self) -> None:
        """Write every queued batch, stop the thread, and raise its error if it had one."""
        self.batches.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Collection:
    """State of one :func:`collect_async` call (counters, queue, buffer of answers not yet stored)."""

    def __init__(
        self,
        todo: list[TripletDesign],
        agents: list[AsyncAgent],
        store: TripletStore,
        *,
        concurrency: int,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        request_timeout: float | None,
        rate_limit: float | None,
        max_requests: int | None,
        max_tokens: int | None,
        flush_every: int,
        flush_seconds: float,
        seed: int | None,
        progress: bool,
        next_designs: NextDesigns | None = None,
    ) -> None:
        self.todo = todo
        self.shown = [design.shown() for design in todo]
        self.queue = [(d, row) for d, design in enumerate(todo) for row in range(len(design))]
        self.queue.reverse()  # pop() from the end takes trials in design order
        self.n_to_ask = len(self.queue)
        self.agents = agents
        self.store = store
        self.writer: _Writer | None = None
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.request_timeout = request_timeout
        self.limiter = None if rate_limit is None else _RateLimiter(rate_limit)
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.rng = random.Random(seed)
        self.progress = progress
        self.next_designs = next_designs
        self.refilling: asyncio.Future | None = None
        self.n_design_added = 0
        self.n_stored_added = 0

        self.buffer: list[tuple[int, int, Answer, datetime, datetime]] = []
        self.n_requests = 0
        self.n_retries = 0
        self.n_asked = 0
        self.n_stored = 0
        self.tokens = 0
        self.stopped: str | None = None
        self.failure: BaseException | None = None
        self.workers: list[asyncio.Task] = []
        self.bar: Any = None
        self.bar_task: Any = None
        self.asking_since = time.perf_counter()

    # control ------------------------------------------------------------------------------
    def interrupt(self, *_: Any) -> None:
        """Stop issuing requests and cancel those in flight (signal handlers call this)."""
        if self.stopped is None:
            self.stopped = "interrupted"
        self._cancel_workers()

    def _cancel_workers(self) -> None:
        current = asyncio.current_task()
        for worker in self.workers:
            if worker is not current:
                worker.cancel()

    def _may_send(self) -> bool:
        """Reserve one request of the budget; False (and the reason recorded) once it is spent."""
        if self.stopped is not None or self.failure is not None:
            return False
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            self.stopped = "max_tokens"
            return False
        if self.max_requests is not None and self.n_requests >= self.max_requests:
            self.stopped = "max_requests"
            return False
        self.n_requests += 1
        return True

    # asking -------------------------------------------------------------------------------
    async def run(self) -> None:
        if self.progress and (self.n_to_ask or self.next_designs is not None):
            self.bar = make_progress()
            self.bar.start()
            self.bar_task = self.bar.add_task(
                f"collect {self.agents[0].name}", total=self.n_to_ask, unit="trials", info=""
            )
        n_workers = self.concurrency if self.next_designs is not None else min(self.concurrency, self.n_to_ask)
        self.writer = _Writer(self.store) if n_workers else None
        self.workers = [asyncio.create_task(self._work(agent)) for agent in self.agents for _ in range(n_workers)]
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            if self.workers:
                await asyncio.wait(self.workers)
        finally:
            self._cancel_workers()
            flusher.cancel()
            if self.refilling is not None:  # a round being chosen when the run stopped: let it finish
                await asyncio.wait([self.refilling])
            pending = [task for task in (*self.workers, flusher) if not task.done()]
            if pending:
                await asyncio.wait(pending)
            try:
                if self.writer is not None:
                    try:
                        self._flush()
                    finally:
                        self.writer.close()  # blocks until every answer received is committed
            except Exception as exc:
                if self.failure is None:
                    raise
                if exc is not self.failure:
                    self.failure.add_note(f"collect_async: storing the last answers failed too: {exc!r}")
            finally:
                if self.bar is not None:
                    self._show_progress()
                    self.bar.stop()

    @property
    def n_duplicates(self) -> int:
        """Answered trials that another writer had stored in the meantime."""
        return 0 if self.writer is None else self.writer.n_duplicates

    async def _work(self, agent: AsyncAgent) -> None:
        try:
            while self.stopped is None and self.failure is None:
                if self.queue:
                    await self._ask(agent, *self.queue.pop())
                elif not await self._refill():
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.failure is None:
                self.failure = exc
            self._cancel_workers()

    async def _refill(self) -> bool:
        """Wait for more trials from ``next_designs`` (one call at a time for every idle worker); False when done."""
        if self.next_designs is None:
            return False
        if self.refilling is None:
            self.refilling = asyncio.ensure_future(self._fetch())
        # shielded: a worker cancelled while waiting does not cancel the fetch the others wait for
        return await asyncio.shield(self.refilling)

    async def _fetch(self) -> bool:
        try:
            while self.next_designs is not None:
                designs = await self.next_designs()
                if designs is None:
                    self.next_designs = None
                elif self._extend(designs):
                    return True
            return False
        finally:
            self.refilling = None

    def _extend(self, designs: Sequence[TripletDesign]) -> int:
        """Queue the trials of ``designs`` the store lacks; how many."""
        added = 0
        for design in designs:
            missing = self.store.missing(design)
            self.n_design_added += len(design)
            self.n_stored_added += len(design) - len(missing)
            if len(missing):
                d = len(self.todo)
                self.todo.append(missing)
                self.shown.append(missing.shown())
                self.queue[:0] = [(d, row) for row in reversed(range(len(missing)))]
                added += len(missing)
        self.n_to_ask += added
        if self.bar is not None:
            self.bar.update(self.bar_task, total=self.n_to_ask)
        return added

    async def _ask(self, agent: AsyncAgent, d: int, row: int) -> None:
        shown = self.shown[d][row]
        for attempt in range(self.max_retries + 1):
            if not self._may_send():
                return  # budget spent or stopping: the trial stays missing
            if self.limiter is not None:
                await self.limiter.acquire()
            started = utc_now()
            try:
                answer = await self._request(agent, shown, d, row)
            except RetryableError as exc:
                finished = utc_now()
                if attempt == self.max_retries:
                    answer = Answer(None, status=exc.status, error=str(exc))
                    break
                self.n_retries += 1
                delay = self._delay(attempt, exc.retry_after)
                logger.debug("agent %r: %s; retry %d in %.3f s", agent.name, exc, attempt + 1, delay)
                await asyncio.sleep(delay)
            else:
                finished = utc_now()
                break
        self._record(d, row, dataclasses.replace(answer, attempts=attempt + 1), started, finished)

    async def _request(self, agent: AsyncAgent, shown: tuple[str, ...], d: int, row: int) -> Answer:
        trial_type = self.todo[d].trial_type
        try:
            if self.request_timeout is None:
                answer = await ajudge_trial(agent, shown, trial_type)
            else:
                deadline = asyncio.timeout(self.request_timeout)
                try:
                    async with deadline:
                        answer = await ajudge_trial(agent, shown, trial_type)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    raise RetryableError(f"no answer within {self.request_timeout:g} s", status="timeout") from None
            if not isinstance(answer, Answer):
                raise TypeError(f"agent {agent.name!r} returned {type(answer).__name__}, not an Answer")
        except (RetryableError, asyncio.CancelledError):
            raise
        except Exception as exc:
            key = self.todo[d].subset([row]).keys()[0]
            exc.add_note(f"collect_async: agent {agent.name!r} ({agent.model}) failed on trial {key} showing {shown}")
            raise
        return answer

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, at least what the server asked for."""
        delay = self.rng.uniform(0.0, min(self.max_backoff, self.backoff * 2.0**attempt))
        return max(delay, retry_after) if retry_after is not None else delay

    # storing ------------------------------------------------------------------------------
    def _record(self, d: int, row: int, answer: Answer, started: datetime, finished: datetime) -> None:
        self.buffer.append((d, row, answer, started, finished))
        self.n_asked += 1
        if answer.tokens:
            self.tokens += answer.tokens
        if len(self.buffer) >= self.flush_every:
            self._flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                self._flush()
            except Exception as exc:
                if self.failure is None:
                    self.failure = exc
                self._cancel_workers()
                return

    def _flush(self) -> None:
        """Hand the buffered answers to the writer thread, one batch per design."""
        if self.buffer:
            batch, self.buffer = self.buffer, []
            agent = self.agents[0]
            for d in sorted({entry[0] for entry in batch}):
                entries = [entry for entry in batch if entry[0] == d]
                self.writer.submit(
                    self.todo[d].subset([entry[1] for entry in entries]),
                    [entry[2] for entry in entries],
                    [entry[3] for entry in entries],
                    [entry[4] for entry in entries],
                    agent.prompt_hash,
                    agent.name,
                    agent.model,
                )
                self.n_stored += len(entries)
        if self.bar is not None:
            self._show_progress()

    def _show_progress(self) -> None:
        rate = self.n_stored / max(time.perf_counter() - self.asking_since, 1e-9)
        info = f"{rate:,.1f}/s retries={self.n_retries}" + (f" tokens={self.tokens:,}" if self.tokens else "")
        self.bar.update(self.bar_task, completed=self.n_stored, info=info)


def _check_options(options: dict[str, Any]) -> None:
    """Raise an InputError naming the first keyword option of :func:`collect_async` out of its range."""

    def positive(name: str, allow_none: bool = False, strict: bool = True) -> None:
        value = options[name]
        if value is None and allow_none:
            return
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (value <= 0 if strict else value < 0):
            raise InputError(f"collect_async: {name} must be a number {'>' if strict else '>='} 0, got {value!r}")

    budgets = ("max_requests", "max_tokens")  # None: no budget
    for name in ("concurrency", "flush_every", "max_retries", *budgets):
        value = options[name]
        if (value is not None or name not in budgets) and (not isinstance(value, int) or isinstance(value, bool)):
            raise InputError(f"collect_async: {name} must be an integer, got {value!r}")
    positive("concurrency")
    positive("flush_every")
    positive("max_retries", strict=False)
    positive("backoff", strict=False)
    positive("max_backoff", strict=False)
    positive("request_timeout", allow_none=True)
    positive("rate_limit", allow_none=True)
    positive("max_requests", allow_none=True, strict=False)
    positive("max_tokens", allow_none=True, strict=False)
    positive("flush_seconds")


def _check_agents(agents: AsyncAgent | Sequence[AsyncAgent], store: TripletStore) -> list[AsyncAgent]:
    if isinstance(agents, AsyncAgent):
        agents = [agents]
    elif isinstance(agents, Sequence):
        agents = list(agents)
    else:
        raise InputError(f"collect_async: {agents!r} is not an AsyncAgent (name, model, prompt_hash, ajudge)")
    if not agents:
        raise InputError("collect_async needs at least one agent")
    for agent in agents:
        if not isinstance(agent, AsyncAgent):
            raise InputError(f"collect_async: {agent!r} is not an AsyncAgent (name, model, prompt_hash, ajudge)")
        check_agent_fits_store(store, agent.name, agent.model)
    hashes = sorted({str(agent.prompt_hash) for agent in agents})
    if len(hashes) > 1:
        raise InputError(f"collect_async: the agents use different prompts (prompt_hash {hashes})")
    prompt_hash = agents[0].prompt_hash
    stored = [
        row[0]
        for row in store.connection.execute(
            "SELECT DISTINCT prompt_hash FROM judgments WHERE prompt_hash IS NOT NULL LIMIT 2"
        )
    ]
    if any(value != prompt_hash for value in stored):
        raise InputError(
            f"{store.path}: stored judgments were asked with prompt_hash {stored}, the agent's is {prompt_hash!r}; "
            "use another store for another prompt"
        )
    return agents


async def _collect(
    design: TripletDesign | Sequence[TripletDesign],
    agents: AsyncAgent | Sequence[AsyncAgent],
    store: TripletStore,
    own_loop: bool,
    **options: Any,
) -> CollectionSummary:
    started = time.perf_counter()
    designs = as_designs(design, "collect_async")
    _check_options(options)
    if str(store.path) in ("", ":memory:"):
        raise InputError("collect_async needs a store in a file: its writer thread opens its own connection")
    agent_list = _check_agents(agents, store)
    for agent in agent_list:
        check_agent_answers(agent, designs)

    todo, n_already_stored = missing_designs(designs, store)
    n_design = sum(len(d) for d in designs)
    collection = _Collection([d for d in todo if len(d)], agent_list, store, **options)

    loop = asyncio.get_running_loop()
    handled: dict[int, Any] = {}
    if own_loop and threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, collection.interrupt)
            except (NotImplementedError, RuntimeError):  # no signal support in this loop
                continue
            handled[signum] = previous
    meter = RunMeter()  # remote agents: no GPU of this machine's to count
    try:
        await collection.run()
    finally:
        if collection.n_requests:
            record_run(
                meter, store, "collect_async", collection.n_asked,
                n_requests=collection.n_requests, n_retries=collection.n_retries,
            )  # fmt: skip
        if own_loop:  # the loop ends with this call: close the agents' HTTP clients bound to it
            for agent in agent_list:
                aclose = getattr(agent, "aclose", None)
                if aclose is not None:
                    await aclose()
        for signum, previous in handled.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    summary = summarize_call(
        store,
        started,
        n_design + collection.n_design_added,
        n_already_stored + collection.n_stored_added,
        collection.n_asked,
        n_duplicates=collection.n_duplicates,
        n_requests=collection.n_requests,
        n_retries=collection.n_retries,
        tokens=collection.tokens,
        stopped=collection.stopped,
    )
    if collection.failure is not None:
        collection.failure.add_note(
            f"collect_async: {summary.n_asked} trials answered before the failure are stored in {store.path}; "
            "call again to resume"
        )
        raise collection.failure
    return summary


async def collect_async(
    design: TripletDesign | Sequence[TripletDesign],
    agents: AsyncAgent | Sequence[AsyncAgent],
    store: TripletStore,
    *,
    concurrency: int = 16,
    max_retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    request_timeout: float | None = 120.0,
    rate_limit: float | None = None,
    max_requests: int | None = None,
    max_tokens: int | None = None,
    flush_every: int = 512,
    flush_seconds: float = 1.0,
    seed: int | None = None,
    progress: bool = True,
    next_designs: NextDesigns | None = None,
) -> CollectionSummary:
    """Ask remote agents every trial of ``design`` that ``store`` lacks, concurrently, and store the answers.

    Parameters
    ----------
    design : TripletDesign or sequence of TripletDesign
        The trials to collect, asked in design order (designs one after the other).
    agents : AsyncAgent or sequence of AsyncAgent
        One agent per endpoint. All must have the store's ``name`` and ``model`` and one
        ``prompt_hash``, which must also be that of any judgment already stored, and answer the
        trial type of every design (passed to ``ajudge`` for trials other than odd-one-out).
    store : TripletStore
        Where answers go; it decides what is missing.
    concurrency : int
        Requests in flight per agent. Workers of all agents take trials from one queue.
    max_retries : int
        Times a transiently failed request is tried again; then the trial is stored with the
        failure's status (``error`` or ``timeout``).
    backoff, max_backoff : float
        Retry ``k`` (from 0) waits a uniform random time in ``[0, min(max_backoff, backoff * 2**k)]``
        (full jitter), or the server's ``retry_after`` when that is longer.
    request_timeout : float or None
        Seconds one request may take; expiry counts as a transient failure with status ``timeout``.
    rate_limit : float or None
        Requests per second over all agents (retries included), evenly spaced.
    max_requests : int or None
        Send at most this many requests (retries included) in this call, then stop cleanly:
        answers received are stored, trials not finished stay missing.
    max_tokens : int or None
        Stop sending once the answers of this call report this many tokens (requests in flight
        still finish, so the total may exceed it by their tokens).
    flush_every, flush_seconds : int, float
        Store answers in one transaction every ``flush_every`` answers or ``flush_seconds``
        seconds, whichever comes first; a killed process loses at most what was not flushed.
    seed : int or None
        Seed of the backoff jitter.
    progress : bool
        Show a progress bar (rate, retries, tokens, ETA) on stderr (unless ``ODDONEOUT_PROGRESS=0``).
    next_designs : async callable, optional
        More trials as the collection goes (adaptive rounds,
        :func:`~oddoneout.collect.adaptive.collect_adaptive_remote`): awaited once every queued
        trial has been handed to a request, while those in flight complete; it returns designs
        whose missing trials are queued next, or ``None`` when there are no more. Awaited once at a
        time; a call in progress when the collection stops is let finish.

    Returns
    -------
    CollectionSummary
        With ``n_requests``, ``n_retries``, ``tokens`` and ``stopped`` (budget reached) filled in.
        Each trial's ``started_at``/``finished_at`` are those of its last request.

    Raises
    ------
    InputError
        On bad options, or agents that do not match the store.
    Exception
        Whatever an agent raised other than :class:`~oddoneout.agents.base.RetryableError`,
        after storing every answer received; a note names the trial and the number stored.
    """
    return await _collect(own_loop=False, **locals())  # every parameter above, by name


def collect_remote(
    design: TripletDesign | Sequence[TripletDesign],
    agents: AsyncAgent | Sequence[AsyncAgent],
    store: TripletStore,
    **options: Any,
) -> CollectionSummary:
    """:func:`collect_async` run to completion from synchronous code, stopping cleanly on a signal.

    Parameters are those of :func:`collect_async` (``options``: its keyword options, with its
    defaults). On SIGINT (Ctrl-C) or SIGTERM, received in the main thread, it stops sending,
    cancels the requests in flight, stores every answer received and raises
    :class:`KeyboardInterrupt` (calling again resumes). The event loop ends with the call, so
    agents' own HTTP clients (those closed by an ``aclose`` method) are closed too; the agents
    can be used again.

    Returns
    -------
    CollectionSummary
    """
    arguments = inspect.signature(collect_async).bind(design, agents, store, **options)
    arguments.apply_defaults()
    summary = asyncio.run(_collect(own_loop=True, **arguments.arguments))
    if summary.stopped == "interrupted":
        interrupt = KeyboardInterrupt()
        interrupt.add_note(
            f"collect_remote: interrupted; {summary.n_asked} trials answered in this call are stored in "
            f"{store.path} ({summary.n_missing} missing); call again to resume"
        )
        raise interrupt
    return summary
