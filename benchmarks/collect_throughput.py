"""Collection throughput: the asynchronous runner against a loopback chat server of known capacity.

A loopback OpenAI-compatible server (``tests/fault_server.py``, in its own process) answers every
request after a fixed latency, serving any number concurrently. Measured in the same run:

1. the server's capacity at each concurrency: the theoretical bound ``concurrency / latency``,
   and bare concurrent POSTs from a plain aiohttp session (no httpx, no prompt building,
   parsing or storing), the most this server serves: the runner is compared with this;
2. a plain sequential loop: one request at a time, one store insert per answer;
3. :func:`~oddoneout.collect.async_runner.collect_async` at several concurrencies: first with an
   in-process agent of the same latency (the runner's own ceiling, no HTTP), then with
   :class:`OpenAIChatAgent` over HTTP, as judgments/s and as a fraction of the capacity, of the
   same client's raw POST rate, and of the sequential loop. The agent's client is its default
   (``aiohttp``: :class:`~oddoneout.agents.http_transport.AiohttpClient`), an httpx client over
   aiohttp's pool (``httpx+aiohttp``: :class:`~oddoneout.agents.http_transport.AiohttpTransport`),
   or httpx with its own pool (``httpx``), which slows down with many connections (encode/httpx#3215);
4. the store's write rate (:meth:`TripletStore.add` batches of 10,000 and of 512 rows, one
   interval per trial, as the runner writes them).

Usage::

    python benchmarks/collect_throughput.py --quick     # a few seconds per measurement
    python benchmarks/collect_throughput.py --latency 0.05 --concurrency 16 64 256 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import httpx

from oddoneout.agents.base import Answer
from oddoneout.agents.http_transport import AiohttpClient, async_client, fast_client
from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT
from oddoneout.collect.async_runner import collect_async
from oddoneout.collect.designs import random_design
from oddoneout.collect.store import TripletStore, utc_now

CLIENTS = ("aiohttp", "httpx+aiohttp", "httpx")
SERVER = Path(__file__).resolve().parents[1] / "tests" / "fault_server.py"
ITEMS = [f"item{i:04d}" for i in range(300)]
CAPTIONS = {item: f"a short clip of {item}, someone laughing at a party" for item in ITEMS}


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/v1"


def make_client(concurrency: int, transport: str = "aiohttp") -> AiohttpClient | httpx.AsyncClient:
    """The agent's default client, httpx over aiohttp's pool, or httpx with its own pool."""
    if transport == "aiohttp":
        return fast_client(60.0, max_connections=concurrency)
    if transport == "httpx+aiohttp":
        return async_client(60.0, max_connections=concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=60.0)


def make_agent(base_url: str, client: AiohttpClient | httpx.AsyncClient | None = None) -> OpenAIChatAgent:
    return OpenAIChatAgent(
        "llm", "loopback", base_url, prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, api_key_env=None, client=client
    )


async def raw_capacity(base_url: str, concurrency: int, n_requests: int, transport: str) -> float:
    """Requests/s of bare concurrent POSTs (the same body for all; responses read, not parsed).

    ``transport="bare"`` posts with a plain aiohttp session (no httpx at all): the most this
    server serves at this concurrency, the capacity the runner is compared with.
    """
    body = make_agent(base_url).build_request(tuple(ITEMS[:3]))
    url = f"{base_url}/chat/completions"
    remaining = n_requests
    if transport == "bare":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

        async def post() -> None:
            async with session.post(url, json=body) as response:
                await response.read()

        close = session.close
    else:
        client = make_client(concurrency, transport)

        async def post() -> None:
            response = await client.post(url, json=body)
            response.read()

        close = client.aclose

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await post()

    try:
        await asyncio.gather(*(post() for _ in range(concurrency)))  # open the connections before timing
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n_requests / (time.perf_counter() - started)
    finally:
        await close()


async def sequential(base_url: str, store: TripletStore, n_trials: int) -> float:
    """Judgments/s of one request at a time, each answer inserted on its own."""
    design = random_design(ITEMS, n_trials, seed=1, name="sequential")
    agent = make_agent(base_url)
    started = time.perf_counter()
    for row, shown in enumerate(design.shown()):
        asked = utc_now()
        answer = await agent.ajudge(shown)
        store.add(design.subset([row]), [answer], asked, utc_now(), agent.prompt_hash, agent.name, agent.model)
    seconds = time.perf_counter() - started
    await agent.aclose()
    return n_trials / seconds


async def runner(base_url: str, store: TripletStore, concurrency: int, n_trials: int, transport: str) -> float:
    """Judgments/s of collect_async at one concurrency (fresh design, nothing stored yet)."""
    design = random_design(ITEMS, n_trials, seed=concurrency, name=f"async{concurrency}{transport}")
    async with make_client(concurrency, transport) as client:
        agent = make_agent(base_url, client)
        body = agent.build_request(tuple(ITEMS[:3]))
        await asyncio.gather(*(client.post(f"{base_url}/chat/completions", json=body) for _ in range(concurrency)))
        summary = await collect_async(design, agent, store, concurrency=concurrency, progress=False)
    assert summary.counts["ok"] >= summary.n_asked == n_trials, summary
    return n_trials / summary.seconds


class InProcessAgent:
    """An agent answering after the server's latency without any HTTP: the runner's own ceiling."""

    name, model, prompt_hash = "llm", "loopback", PAPER_LLM_PROMPT.hash

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def ajudge(self, shown: tuple[str, str, str]) -> Answer:
        await asyncio.sleep(self.latency)
        return Answer(0, raw="Video 1 is noticeably different from the other two.", tokens=40)


async def runner_without_http(store: TripletStore, latency: float, concurrency: int, n_trials: int) -> float:
    """Judgments/s of collect_async with :class:`InProcessAgent` (no client, no server)."""
    design = random_design(ITEMS, n_trials, seed=concurrency, name=f"inprocess{concurrency}")
    summary = await collect_async(design, InProcessAgent(latency), store, concurrency=concurrency, progress=False)
    return n_trials / summary.seconds


def store_rate(directory: Path, batch: int, n_rows: int) -> float:
    """Judgments/s of TripletStore.add in batches of ``batch`` rows, one interval per trial."""
    design = random_design(ITEMS, n_rows, seed=7, name=f"write{batch}")
    answers = [
        Answer(i % 3, raw="Video 1 is noticeably different from the other two.", tokens=40) for i in range(n_rows)
    ]
    start = utc_now()
    starts = [start + timedelta(milliseconds=i) for i in range(n_rows)]
    finishes = [moment + timedelta(milliseconds=50) for moment in starts]
    with TripletStore(directory / f"write{batch}.sqlite", "llm", "loopback", ITEMS) as store:
        began = time.perf_counter()
        for first in range(0, n_rows, batch):
            rows = slice(first, first + batch)
            store.add(design.subset(rows), answers[rows], starts[rows], finishes[rows], "hash", "llm", "loopback")
        return n_rows / (time.perf_counter() - began)


def measure_http(base_url: str, store: TripletStore, args: argparse.Namespace, seq: float) -> None:
    """The table of raw client and runner rates over HTTP, against the server's measured capacity."""
    print("\ncollect_async with OpenAIChatAgent over loopback HTTP; capacity = bare aiohttp POSTs, same concurrency:")
    print(
        f"{'concurrency':>11} {'bound/s':>8} {'capacity/s':>10} {'client':>13} {'raw/s':>7} {'runner/s':>8} "
        f"{'of capacity':>11} {'of raw':>6} {'x seq':>6}"
    )
    for concurrency in args.concurrency:
        bound = concurrency / args.latency
        n_trials = int(min(args.max_trials, max(200, args.seconds * bound)))
        capacity = asyncio.run(raw_capacity(base_url, concurrency, n_trials, "bare"))
        for transport in args.transport:
            raw = asyncio.run(raw_capacity(base_url, concurrency, n_trials, transport))
            rate = asyncio.run(runner(base_url, store, concurrency, n_trials, transport))
            print(
                f"{concurrency:>11} {bound:>8,.0f} {capacity:>10,.0f} {transport:>13} {raw:>7,.0f} {rate:>8,.0f} "
                f"{rate / capacity:>11.0%} {rate / raw:>6.0%} {rate / seq:>6.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument(
        "--transport", nargs="+", choices=CLIENTS, default=list(CLIENTS),
        help="the agent's HTTP client: its default (AiohttpClient), httpx over aiohttp's pool, or httpx's own pool",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="target duration of each measurement")
    parser.add_argument("--max-trials", type=int, default=20_000, help="cap on trials per measurement")
    parser.add_argument("--store-rows", type=int, default=200_000, help="rows written per store measurement")
    parser.add_argument("--quick", action="store_true", help="1.5 s or 1,000 trials per measurement, 50,000 store rows")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.max_trials, args.store_rows = 1.5, 1_000, 50_000
    print(f"load average at start: {', '.join(f'{load:.2f}' for load in os.getloadavg())} ({os.cpu_count()} cores)")

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"store writes ({args.store_rows:,} rows, per-trial intervals):")
        for batch in (10_000, 512):
            rate = store_rate(directory, batch, args.store_rows)
            print(f"  TripletStore.add batches of {batch:>6,}: {rate:>10,.0f} judgments/s")

        server, base_url = start_server(args.latency)
        try:
            with TripletStore(directory / "llm.sqlite", "llm", "loopback", ITEMS) as store:
                n_seq = max(20, min(args.max_trials, round(args.seconds / args.latency)))
                seq = asyncio.run(sequential(base_url, store, n_seq))
                bound = 1 / args.latency
                print(f"\nserver latency {args.latency * 1000:g} ms per request")
                print(f"sequential loop ({n_seq} trials): {seq:,.1f} judgments/s (bound {bound:,.1f}/s)")
                print("collect_async with an in-process agent of the same latency (no HTTP):")
                for concurrency in args.concurrency:
                    bound = concurrency / args.latency
                    n_trials = int(min(args.max_trials, max(200, args.seconds * bound)))
                    rate = asyncio.run(runner_without_http(store, args.latency, concurrency, n_trials))
                    print(f"  concurrency {concurrency:>4}: {rate:>8,.0f}/s, {rate / bound:.0%} of {bound:,.0f}/s")
                measure_http(base_url, store, args, seq)
        finally:
            server.stdin.close()
            server.wait(30)
        print(f"load average at end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
