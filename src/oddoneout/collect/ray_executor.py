"""Collecting judgments on a Ray cluster: shards of the missing trials run on workers, one store merges them.

The store stays where the driver runs (the head node of a cluster). The driver computes which
trials of the design(s) the store lacks, splits them into shards and hands the shards to a pool
of Ray actors. Each actor builds its own agent once with ``agent_factory`` (so a model is loaded
once per worker, on the worker's node and GPU) and answers shard after shard. The driver stores
each shard's answers as soon as it comes back, with :meth:`TripletStore.add` (``INSERT OR
IGNORE``), so an interrupted collection keeps every finished shard, a second call asks only what
is still missing, and no trial is ever stored twice.

Failure policy (as in :func:`oddoneout.collect.runner.collect`): per-trial failures are answers
with a status; an exception raised by an agent stops the submission of new shards, the shards
already running are waited for and stored, and the exception is re-raised with a note.

Ray is an optional dependency (``pip install oddoneout[ray]``), imported when needed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.base import Agent, Answer, AsyncAgent, check_answers_trial_type, judge_trials
from oddoneout.collect.designs import TripletDesign, encode_keys
from oddoneout.collect.judgment_rows import answers_from_frame
from oddoneout.collect.runner import (
    CollectionSummary,
    as_designs,
    check_agent_fits_store,
    missing_designs,
    summarize_call,
)
from oddoneout.collect.store import TripletStore, utc_now
from oddoneout.errors import InputError
from oddoneout.progress import make_progress

#: Cores a local Ray instance started by :func:`collect_ray` may use (when no address is given).
LOCAL_NUM_CPUS = 2


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError("collect_ray needs Ray: pip install 'oddoneout[ray]'") from exc
    return ray


@dataclass(frozen=True)
class _Shard:
    """A slice of one design's missing trials: what a worker answers in one call."""

    number: int
    design: TripletDesign


@dataclass(frozen=True)
class _ShardResult:
    """The answers to one shard, in parts that the store adds one transaction each.

    Each part is ``(rows, started_at, finished_at, answers)``: positions of the answered trials in
    the shard, and one time for the part (a synchronous batch) or one per trial (asynchronous).
    """

    number: int
    parts: list[tuple[np.ndarray, Any, Any, list[Answer]]]

    @property
    def n_answered(self) -> int:
        return sum(len(rows) for rows, *_ in self.parts)


class _ShardWorker:
    """Body of the Ray actor: one agent, built once, answering shards.

    A synchronous :class:`~oddoneout.agents.base.Agent` answers in batches of ``batch_size``; an
    :class:`~oddoneout.agents.base.AsyncAgent` (a remote model) answers through
    :func:`~oddoneout.collect.async_runner.collect_remote` (concurrency, retries) into a
    temporary shard store, whose judgments go back to the driver.
    """

    def __init__(self, agent_factory: Callable[[], Agent | AsyncAgent], remote_options: Mapping[str, Any]) -> None:
        self.agent = agent_factory()
        if not callable(getattr(self.agent, "judge", None)) and not callable(getattr(self.agent, "ajudge", None)):
            raise InputError(f"agent_factory built {self.agent!r}, which has neither judge() nor ajudge()")
        self.remote_options = dict(remote_options)

    def describe(self) -> tuple[str, str, str | None]:
        return self.agent.name, self.agent.model, self.agent.prompt_hash

    def judge(self, shard: _Shard, batch_size: int) -> _ShardResult:
        check_answers_trial_type(self.agent, shard.design.trial_type)
        if callable(getattr(self.agent, "judge", None)):
            return self._judge_batches(shard, batch_size)
        return self._judge_remote(shard)

    def _judge_batches(self, shard: _Shard, batch_size: int) -> _ShardResult:
        parts = []
        for start in range(0, len(shard.design), batch_size):
            rows = np.arange(start, min(start + batch_size, len(shard.design)))
            asked_at = utc_now()
            batch = shard.design.subset(rows)
            answers = judge_trials(self.agent, batch.shown(), batch.keys(), batch.trial_type)
            answered_at = utc_now()
            if len(answers) != len(rows):
                raise RuntimeError(f"agent {self.agent.name!r} returned {len(answers)} answers for {len(rows)} trials")
            parts.append((rows, asked_at, answered_at, list(answers)))
        return _ShardResult(shard.number, parts)

    def _judge_remote(self, shard: _Shard) -> _ShardResult:
        from oddoneout.collect.async_runner import collect_remote

        agent = self.agent
        with tempfile.TemporaryDirectory(prefix="oddoneout-shard-") as folder:
            with TripletStore(Path(folder) / "shard.sqlite", agent.name, agent.model) as store:
                collect_remote(shard.design, agent, store, progress=False, **self.remote_options)
                frame = store.judgments()
        # trials left unanswered (a request budget, an interrupt) are simply not returned
        codes = encode_keys(frame["triplet_index"].to_numpy(int), frame["ordering"].to_numpy(int),
                            frame["repeat"].to_numpy(int))  # fmt: skip
        rows = pd.Index(shard.design.key_codes()).get_indexer(codes)
        if (rows < 0).any():
            raise RuntimeError(f"collect_remote stored a trial outside shard {shard.number}")
        answers = answers_from_frame(frame)
        return _ShardResult(
            shard.number, [(rows, frame["started_at"].tolist(), frame["finished_at"].tolist(), answers)]
        )


def plan_shards(designs: Sequence[TripletDesign], n_shards: int) -> list[_Shard]:
    """Split the trials of ``designs`` into about ``n_shards`` shards of equal size, in design order.

    A shard never spans two designs (the store adds one design's trials at a time), so there can be
    up to ``len(designs) - 1`` more shards than asked for. Empty designs give no shard.
    """
    if n_shards < 1:
        raise InputError(f"n_shards must be positive, got {n_shards}")
    total = sum(len(d) for d in designs)
    if total == 0:
        return []
    size = math.ceil(total / n_shards)
    shards = []
    for design in designs:
        for start in range(0, len(design), size):
            shards.append(_Shard(len(shards), design.subset(slice(start, start + size))))
    return shards


def _cluster_slots(ray: Any, worker_options: Mapping[str, Any]) -> int:
    """How many workers with ``worker_options`` the cluster can run at once (at least 1).

    Counts CPUs (one per worker unless ``num_cpus`` says otherwise), GPUs (``num_gpus``) and
    custom ``resources`` such as ``{"vllm_node": 1}``; :class:`InputError` when the cluster has
    too little of one of them for even one worker (the actor would wait forever).
    """
    available = ray.cluster_resources()
    needs = {"CPU": float(worker_options.get("num_cpus", 1)), "GPU": float(worker_options.get("num_gpus", 0))}
    needs.update({str(k): float(v) for k, v in (worker_options.get("resources") or {}).items()})
    slots = {resource: int(available.get(resource, 0) // need) for resource, need in needs.items() if need > 0}
    lacking = sorted(resource for resource, count in slots.items() if count == 0)
    if lacking:
        raise InputError(
            f"the Ray cluster cannot run one worker with {dict(worker_options)}: not enough {lacking} "
            f"(cluster resources {dict(available)})"
        )
    return min(slots.values()) if slots else max(1, int(available.get("CPU", 1)))


def collect_ray(
    design: TripletDesign | Sequence[TripletDesign],
    agent_factory: Callable[[], Agent | AsyncAgent],
    store_path: str | Path,
    *,
    n_shards: int | None = None,
    batch_size: int = 10_000,
    ray_address: str | None = None,
    progress: bool = True,
    n_workers: int | None = None,
    worker_options: Mapping[str, Any] | None = None,
    item_ids: Sequence[str] | None = None,
    remote_options: Mapping[str, Any] | None = None,
) -> CollectionSummary:
    """Collect the trials a store lacks on a Ray cluster, merging shards into the store as they finish.

    Parameters
    ----------
    design : TripletDesign or sequence of TripletDesign
        The trials to collect.
    agent_factory : callable
        Builds the agent, called once in each Ray worker; must be picklable (a module-level
        function, a :func:`functools.partial`, a class). It is never called on the driver. A
        synchronous :class:`~oddoneout.agents.base.Agent` answers each shard in batches; an
        :class:`~oddoneout.agents.base.AsyncAgent` (e.g. an ``OpenAIChatAgent`` for the
        node's own vLLM server) answers it through
        :func:`~oddoneout.collect.async_runner.collect_remote`, with ``remote_options``.
    store_path : path
        The SQLite store on the driver's machine; created (with ``item_ids``) if missing. An
        existing store must hold the same agent name and model as the agents built.
    n_shards : int, optional
        How many shards to split the missing trials into. Default: enough for about four shards
        per worker and at most ``batch_size`` trials per shard. More shards store progress more
        often and balance the load better; each costs a round trip.
    batch_size : int
        Trials per ``agent.judge`` call inside a shard.
    ray_address : str, optional
        Address of a running cluster (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``).
        Without it a local Ray instance with :data:`LOCAL_NUM_CPUS` cores is started (and shut
        down at the end). When Ray is already initialised in this process, that instance is used.
    progress : bool
        Show a progress bar on stderr (unless ``ODDONEOUT_PROGRESS=0``).
    n_workers : int, optional
        Number of Ray actors (agents) to run. Default: as many as the cluster's free resources
        fit, given ``worker_options`` (at most one per shard).
    worker_options : mapping, optional
        Ray actor options of each worker, e.g. ``{"num_gpus": 1}`` for one GPU per agent or
        ``{"num_cpus": 0.25}`` for agents that only wait on a remote server. Default one CPU.
    item_ids : sequence of str, optional
        Vocabulary recorded when the store is created (see :class:`TripletStore`).
    remote_options : mapping, optional
        Keyword arguments of :func:`~oddoneout.collect.async_runner.collect_remote` for
        asynchronous agents (``concurrency``, ``max_retries``, ``request_timeout``,
        ``rate_limit``...), applied per worker and shard. Trials a shard leaves unanswered
        (``max_requests`` reached) stay missing and are asked by the next call.

    Returns
    -------
    CollectionSummary
        As from :func:`~oddoneout.collect.runner.collect`; ``seconds`` includes starting the
        workers and building their agents.

    Raises
    ------
    InputError
        Bad arguments, or agents whose name or model differ from the existing store's.
    Exception
        Whatever an agent raised, after the shards already running were stored.
    """
    started = time.perf_counter()
    designs = as_designs(design, "collect_ray")
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    if n_shards is not None and n_shards < 1:
        raise InputError(f"n_shards must be positive, got {n_shards}")
    if n_workers is not None and n_workers < 1:
        raise InputError(f"n_workers must be positive, got {n_workers}")
    if not callable(agent_factory):
        raise InputError(f"agent_factory must be callable, got {agent_factory!r}")
    store_path = Path(store_path)
    worker_options = dict(worker_options or {})
    n_design = sum(len(d) for d in designs)

    store = TripletStore.open(store_path) if store_path.is_file() else None
    try:
        todo, n_already_stored = (designs, 0) if store is None else missing_designs(designs, store)
        n_to_ask = n_design - n_already_stored
        if n_to_ask == 0:
            counts = store.counts() if store is not None else {}
            return CollectionSummary(n_design, n_already_stored, 0, counts, time.perf_counter() - started)

        ray = _import_ray()
        owns_ray = not ray.is_initialized()
        if owns_ray:
            if ray_address is None:
                ray.init(num_cpus=min(LOCAL_NUM_CPUS, os.cpu_count() or 1), include_dashboard=False)
            else:
                ray.init(address=ray_address)
        try:
            slots = _cluster_slots(ray, worker_options)  # also refuses workers the cluster cannot place
            workers = n_workers or slots
            shards = plan_shards(todo, n_shards or max(4 * workers, math.ceil(n_to_ask / batch_size)))
            workers = min(workers, len(shards))
            actor_class = ray.remote(**worker_options)(_ShardWorker) if worker_options else ray.remote(_ShardWorker)
            actors = [actor_class.remote(agent_factory, dict(remote_options or {})) for _ in range(workers)]
            try:
                name, model, prompt_hash = _check_agents(ray, actors, store)
                if store is None:
                    store = TripletStore(store_path, name, model, item_ids)
                n_asked, n_duplicates = _run_shards(
                    ray, actors, shards, store, batch_size, name, model, prompt_hash, progress
                )
            finally:
                for actor in actors:
                    ray.kill(actor)
        finally:
            if owns_ray:
                ray.shutdown()
        return summarize_call(store, started, n_design, n_already_stored, n_asked, n_duplicates=n_duplicates)
    finally:
        if store is not None:
            store.close()


def _check_agents(ray: Any, actors: list[Any], store: TripletStore | None) -> tuple[str, str, str | None]:
    """Name, model and prompt hash shared by every worker's agent, checked against the store."""
    described = ray.get([actor.describe.remote() for actor in actors])
    if len(set(described)) != 1:
        raise InputError(f"agent_factory built differing agents (name, model, prompt hash): {sorted(set(described))}")
    name, model, prompt_hash = described[0]
    if store is not None:
        check_agent_fits_store(store, name, model)
    return name, model, prompt_hash


def _run_shards(
    ray: Any,
    actors: list[Any],
    shards: list[_Shard],
    store: TripletStore,
    batch_size: int,
    name: str,
    model: str,
    prompt_hash: str | None,
    progress: bool,
) -> tuple[int, int]:
    """Keep every actor busy with one shard, storing each result as it arrives; (asked, duplicates)."""
    pending = list(reversed(shards))
    running: dict[Any, tuple[Any, _Shard]] = {}
    n_asked = 0
    duplicates_before = store.n_duplicates
    failure: BaseException | None = None
    failed_shard: _Shard | None = None
    bar = make_progress() if progress else None
    if bar is not None:
        bar.start()
        task = bar.add_task(f"collect {name} (ray)", total=sum(len(s.design) for s in shards), unit="trials", info="")
    asking_since = time.perf_counter()
    try:
        for actor in actors:
            if pending:
                shard = pending.pop()
                running[actor.judge.remote(shard, batch_size)] = (actor, shard)
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            actor, shard = running.pop(done)
            try:
                result: _ShardResult = ray.get(done)
            except Exception as exc:  # an agent failed: store what finishes, then re-raise
                if failure is None:
                    failure, failed_shard = exc, shard
                pending.clear()
                continue
            for rows, asked_at, answered_at, answers in result.parts:
                store.add(
                    shard.design.subset(rows),
                    answers,
                    asked_at,
                    answered_at,
                    prompt_hash=prompt_hash,
                    agent=name,
                    model=model,
                )
            n_asked += result.n_answered
            if bar is not None:
                rate = n_asked / max(time.perf_counter() - asking_since, 1e-9)
                bar.update(task, advance=len(shard.design), info=f"{rate:,.0f}/s")
            if pending:
                next_shard = pending.pop()
                running[actor.judge.remote(next_shard, batch_size)] = (actor, next_shard)
    finally:
        if bar is not None:
            bar.stop()
    if failure is not None:
        design = failed_shard.design
        failure.add_note(
            f"collect_ray: agent {name!r} failed on a shard of {len(design)} trials of design {design.name!r} "
            f"(triplet_index {design.triplet_index[0]}..{design.triplet_index[-1]}); {n_asked} trials are stored "
            f"in {store.path}; call collect_ray again to resume"
        )
        raise failure
    return n_asked, store.n_duplicates - duplicates_before
