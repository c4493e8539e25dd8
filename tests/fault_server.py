"""A loopback OpenAI-compatible chat server of the tests' own, answering or failing as each test plans.

The server reads the three captions from the prompt (lines ``Video N: <caption>``) and asks the
test's *plan* what to do with this triplet at this attempt: answer (after ``latency`` seconds),
fail with HTTP 500, 429 with ``Retry-After``, hang, or send garbage or truncated JSON. It records
every request (time and attempt per triplet) so tests can count requests and measure the gap
between attempts on the server side.

In a test::

    with FaultServer(plan) as server:
        agent = OpenAIChatAgent("llm", "m", server.base_url, prompt=..., captions=...)

As a process (for benchmarks)::

    python tests/fault_server.py --latency 0.05    # prints the port, serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

#: What the server can do with one request.
KINDS = ("ok", "unparseable", "ambiguous", "500", "429", "hang", "garbage", "truncated")

_SHOWN = re.compile(r"^Video ([123]): (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Reply:
    """The server's reaction to one request.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`: ``ok`` (a well-formed answer naming the odd one out),
        ``unparseable``/``ambiguous`` (well-formed, but an answer the parser cannot use),
        ``500``, ``429`` (with ``Retry-After: retry_after``), ``hang`` (no answer until the server
        stops), ``garbage`` (HTTP 200, not JSON), ``truncated`` (HTTP 200, JSON cut short).
    retry_after : float
        Seconds sent in the ``Retry-After`` header of a 429.
    """

    kind: str
    retry_after: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown reply kind {self.kind!r}")


#: A plan: (captions shown, attempt number from 0 for this triplet) -> the reply.
Plan = Callable[[tuple[str, str, str], int], Reply]


def schedule(*kinds: str | Reply) -> Plan:
    """A plan giving every triplet the same sequence of replies, the last one repeated forever."""
    replies = [kind if isinstance(kind, Reply) else Reply(kind) for kind in kinds]
    return lambda captions, attempt: replies[min(attempt, len(replies) - 1)]


def odd_one_out(captions: tuple[str, str, str]) -> int:
    """The position (0-2) the server names for a triplet: a fixed hash of the captions shown."""
    return int(hashlib.sha256("|".join(captions).encode()).hexdigest(), 16) % 3


class FaultServer:
    """The server, running on 127.0.0.1 in a background thread with its own event loop.

    Parameters
    ----------
    plan : Plan, optional
        What to do with each request; by default every request is answered.
    latency : float
        Seconds every request waits before the server reacts (an ``asyncio.sleep``: many
        requests wait concurrently).
    tokens : int
        ``usage.total_tokens`` reported with each answer.

    Attributes
    ----------
    n_requests : int
        Chat requests received.
    attempts : dict of tuple to list of float
        For each triplet (its captions), the ``time.monotonic()`` of every request.
    authorizations : set of str
        ``Authorization`` headers received.
    """

    def __init__(self, plan: Plan | None = None, latency: float = 0.0, tokens: int = 42) -> None:
        self.plan = plan or schedule("ok")
        self.latency = latency
        self.tokens = tokens
        self.n_requests = 0
        self.n_answered = 0
        self.attempts: dict[tuple[str, ...], list[float]] = {}
        self.authorizations: set[str] = set()
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """The API root to give an agent."""
        return f"http://127.0.0.1:{self.port}/v1"

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FaultServer":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fault-server", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the fault server did not start")
        return self

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/{prefix:.*}chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._closing.set()
        await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # requests ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        self.n_requests += 1
        if "Authorization" in request.headers:
            self.authorizations.add(request.headers["Authorization"])
        body = await request.json()
        captions = _captions(body)
        attempts = self.attempts.setdefault(captions, [])
        attempts.append(received)
        reply = self.plan(captions, len(attempts) - 1)
        if reply.kind == "hang":
            await self._closing.wait()
            return web.Response(status=503, text="server stopping")
        if self.latency:
            await asyncio.sleep(self.latency)
        self.n_answered += 1
        if reply.kind == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        if reply.kind == "429":
            return web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": f"{reply.retry_after:g}"}
            )
        if reply.kind == "garbage":
            return web.Response(status=200, text="<html>502 Bad Gateway</html>", content_type="application/json")
        if reply.kind == "truncated":
            text = json.dumps(self._completion(captions, body, "ok"))
            return web.Response(status=200, text=text[: len(text) // 2], content_type="application/json")
        return web.json_response(self._completion(captions, body, reply.kind))

    def _completion(self, captions: tuple[str, ...], body: dict, kind: str) -> dict:
        if kind == "ok":
            content = f"Video {odd_one_out(captions) + 1} is noticeably different from the other two."
        elif kind == "ambiguous":
            content = "Video 1 or Video 3 is noticeably different from the other two."
        else:
            content = "The weather is lovely today."
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": self.tokens - 10, "completion_tokens": 10, "total_tokens": self.tokens},
        }


def _captions(body: dict) -> tuple[str, ...]:
    """The captions shown in a chat request, in the order shown (empty when there are none)."""
    try:
        content = body["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return ()
    if isinstance(content, list):
        content = "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return tuple(caption for _, caption in sorted(_SHOWN.findall(str(content))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer")
    args = parser.parse_args()
    with FaultServer(latency=args.latency) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin


if __name__ == "__main__":
    main()
