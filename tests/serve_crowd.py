"""Simulated participants of ``oddoneout serve``: async HTTP clients that consent, answer and resume (load tests)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class CrowdResult:
    """What a crowd did: the keys it got a 200 for, latencies of the answer requests, sessions, errors."""

    answered: list[tuple] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    sessions: int = 0
    retries: int = 0
    refused: int = 0
    seconds: float = 0.0


async def _send(client: httpx.AsyncClient, method: str, url: str, deadline: float, result: CrowdResult, **kw):
    """A request, tried again after a dropped connection (a server restart) until ``deadline``."""
    while True:
        try:
            return await client.request(method, url, **kw)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            result.retries += 1
            await asyncio.sleep(0.2)


async def _participant(client: httpx.AsyncClient, url: str, pid: str, deadline: float, result: CrowdResult) -> bool:
    """Consent and answer every trial leased; False when the pool had none left for this participant."""
    consent = {"consent": True, "params": {"PROLIFIC_PID": pid, "STUDY_ID": "load", "SESSION_ID": pid}}
    reply = await _send(client, "POST", url + "/api/session", deadline, result, json=consent)
    reply.raise_for_status()
    state = reply.json()
    if state["full"]:
        return False
    result.sessions += 1
    headers = {"authorization": f"Bearer {state['token']}"}
    while state["trials"]:
        trial = state["trials"][0]
        body = {"key": trial["key"], "choice": trial["position"] % 3, "rt_ms": 700.0, "input": "click"}
        start = time.perf_counter()
        reply = await _send(client, "POST", url + "/api/answer", deadline, result, json=body, headers=headers)
        if reply.status_code == 200:
            result.latencies.append(time.perf_counter() - start)
            result.answered.append(tuple(trial["key"]))
            state = reply.json()
        else:  # e.g. answered before a restart dropped the reply: ask where the session stands
            result.refused += 1
            reply = await _send(client, "GET", url + "/api/session", deadline, result, headers=headers)
            reply.raise_for_status()
            state = reply.json()
    return True


async def _crowd(url: str, concurrency: int, timeout: float) -> CrowdResult:
    result, numbers = CrowdResult(), itertools.count()
    deadline = time.monotonic() + timeout
    empty = asyncio.Event()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while not empty.is_set() and time.monotonic() < deadline:
            if not await _participant(client, url, f"p{next(numbers):06d}", deadline, result):
                empty.set()

    start = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


def run_crowd(url: str, concurrency: int, timeout: float = 300) -> CrowdResult:
    """``concurrency`` participants at a time, new ones arriving until the design has no trial left (or timeout)."""
    return asyncio.run(_crowd(url, concurrency, timeout))
