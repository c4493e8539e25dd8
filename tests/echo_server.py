"""A loopback OpenAI-compatible chat server for tests: records every request, answers as scripted.

Usage::

    with EchoServer() as server:
        server.default = Reply(body=completion("Video 2 is noticeably different from the other two."))
        server.queue(Reply(status=429, headers={"Retry-After": "7"}, body="slow down"))
        ...  # point an agent at server.base_url
        server.requests[0].json  # the body the agent sent
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    """One scripted HTTP answer: status, headers, body (a dict is sent as JSON), delay before it."""

    status: int = 200
    body: dict | str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def completion(
    content: str | None,
    *,
    logprobs: list[dict] | None = None,
    finish_reason: str = "stop",
    refusal: str | None = None,
    total_tokens: int | None = 42,
    usage: dict[str, int] | None = None,
) -> dict:
    """A chat-completion response body as OpenAI-compatible servers send it (``usage`` replaces the made-up one)."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content, "refusal": refusal},
        "finish_reason": finish_reason,
        "logprobs": {"content": logprobs} if logprobs is not None else None,
    }
    body: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion", "model": "echo", "choices": [choice]}
    if total_tokens is not None:
        body["usage"] = {"prompt_tokens": total_tokens - 1, "completion_tokens": 1, "total_tokens": total_tokens}
    if usage is not None:
        body["usage"] = usage
    return body


def count_tokens(text: str) -> int:
    """The test server's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


class CountingResponder:
    """An :attr:`EchoServer.responder` that counts the tokens of every request and answer, as a real server does.

    Each answer is ``content``; its ``usage`` holds the prompt tokens (:func:`count_tokens` of every
    text part of the request's messages) and the completion tokens (of ``content``). ``counted``
    records, per request answered, those counts, the images (``image_url`` parts) and the text.
    """

    def __init__(self, content: str = "Video 1 is noticeably different from the other two.") -> None:
        self.content = content
        self.counted: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, body: Any) -> Reply:
        texts, images = [], 0
        for message in body["messages"]:
            parts = message["content"] if isinstance(message["content"], list) else [message["content"]]
            for part in parts:
                if isinstance(part, str):
                    texts.append(part)
                elif part.get("type") == "text":
                    texts.append(part["text"])
                elif part.get("type") == "image_url":
                    images += 1
        text = "\n".join(texts)
        prompt, answer = count_tokens(text), count_tokens(self.content)
        usage = {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}
        with self._lock:
            self.counted.append({**usage, "images": images, "text": text})
        return Reply(body=completion(self.content, usage=usage, total_tokens=None))


def token_logprobs(tokens: list[str], alternatives: dict[int, dict[str, float]] | None = None) -> list[dict]:
    """The ``logprobs.content`` list for ``tokens``; ``alternatives[i]`` gives token i's top_logprobs.

    A token without alternatives gets log-probability 0 (probability 1) and itself as only top entry.
    """
    alternatives = alternatives or {}
    entries = []
    for index, token in enumerate(tokens):
        top = alternatives.get(index, {token: 0.0})
        entries.append(
            {
                "token": token,
                "logprob": top.get(token, 0.0),
                "bytes": list(token.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top.items()],
            }
        )
    return entries


class EchoServer:
    """A threaded HTTP server on 127.0.0.1 (random free port) answering every POST as scripted.

    Attributes
    ----------
    requests : list of Recorded
        Every request received, in order.
    default : Reply
        The answer when no queued reply is left.
    responder : callable, optional
        When set, the answer when no queued reply is left: called with the request's JSON body.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Reply(body=completion("Video 1 is noticeably different from the other two."))
        self.responder: Callable[[Any], Reply] | None = None
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with server._lock:
                    server.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                    reply = server._queue.popleft() if server._queue else None
                    responder = server.responder
                if reply is None:
                    reply = responder(json.loads(body)) if responder is not None else server.default
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        """The API root to give an agent, ``http://127.0.0.1:<port>/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order, then fall back to :attr:`default`."""
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
