"""aiohttp's connection pool behind httpx's API (AiohttpClient, AiohttpTransport), against real loopback servers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading

import httpx
import pytest
from echo_server import EchoServer, Reply

from oddoneout import __version__
from oddoneout.agents import http_transport
from oddoneout.agents.http_transport import AiohttpClient, AiohttpTransport, async_client, fast_client

pytest.importorskip("aiohttp")


@pytest.fixture
def server():
    with EchoServer() as running:
        yield running


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(params=["AiohttpClient", "AiohttpTransport"])
def make_client(request):
    """The lean client the agents use by default, or an httpx.AsyncClient over the transport."""
    return fast_client if request.param == "AiohttpClient" else async_client


def post(make_client, url: str, **kwargs) -> httpx.Response:
    async def go():
        async with make_client(5.0) as client:
            return await client.post(url, **kwargs)

    return run(go())


def test_requests_and_responses_go_through_unchanged(server, make_client):
    server.queue(Reply(status=429, body=b'{"error": "slow down"}', headers={"Retry-After": "7", "X-Trace": "t1"}))
    url = f"{server.base_url}/chat/completions?x=1"
    response = post(make_client, url, json={"model": "m", "é": 1}, headers={"Authorization": "Bearer k"})
    assert response.status_code == 429 and response.reason_phrase == "Too Many Requests"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["retry-after"] == "7" and response.headers["x-trace"] == "t1"
    assert response.json() == {"error": "slow down"}
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions?x=1")
    assert request.json == {"model": "m", "é": 1}
    assert request.headers["Authorization"] == "Bearer k"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "*/*" and request.headers["Accept-Encoding"] == "gzip, deflate"
    assert "aiohttp" not in request.headers["User-Agent"]  # httpx's headers (or oddoneout's), not aiohttp's
    assert int(request.headers["Content-Length"]) == len(request.body)


def test_compressed_bodies_are_decoded_by_httpx_and_a_corrupt_one_is_a_decoding_error(server, make_client):
    text = '{"choices": []}' * 50
    server.queue(
        Reply(body=gzip.compress(text.encode()), headers={"Content-Encoding": "gzip"}),
        Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}),
    )

    async def go():
        async with make_client(5.0) as client:
            first = await client.post(server.base_url, json={})
            with pytest.raises(httpx.DecodingError):
                await client.post(server.base_url, json={})
            return first

    assert run(go()).text == text


def test_redirects_are_not_followed_by_default(server, make_client):
    server.queue(Reply(status=307, headers={"Location": "/elsewhere"}))
    response = post(make_client, server.base_url, json={})
    assert response.status_code == 307 and response.headers["location"] == "/elsewhere"
    assert len(server.requests) == 1


def test_a_slow_answer_is_a_read_timeout(server, make_client):
    server.queue(Reply(delay=1.0))

    async def go():
        async with make_client(5.0) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(server.base_url, json={}, timeout=0.2)
            return await client.post(server.base_url, json={})  # the client still works

    assert run(go()).status_code == 200


def test_a_refused_connection_is_a_connect_error(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        post(make_client, f"http://127.0.0.1:{port}/v1", json={})


def test_a_dropped_connection_is_a_transport_error(make_client):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drop_one() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()  # no answer

    thread = threading.Thread(target=drop_one, daemon=True)
    thread.start()
    try:
        with pytest.raises(httpx.TransportError) as caught:
            post(make_client, f"http://127.0.0.1:{port}/v1", json={})
    finally:
        thread.join(5)
        listener.close()
    assert isinstance(caught.value, httpx.RequestError)  # what the chat agent retries


async def count_connections(n_requests: int, max_connections: int | None, hold_until: int) -> tuple[list[str], int]:
    """GET ``n_requests`` at once from a loopback asyncio server that answers nothing until
    ``hold_until`` requests are waiting; the answers and the most connections open at one time."""
    open_now = most_open = waiting = 0
    release = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most_open, waiting
        open_now += 1
        most_open = max(most_open, open_now)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                waiting += 1
                if waiting >= hold_until:
                    release.set()
                await release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1
            writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    transport = AiohttpTransport(max_connections)
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as client:
        responses = await asyncio.gather(*(client.get(f"http://127.0.0.1:{port}/") for _ in range(n_requests)))
        assert transport.is_open
    assert not transport.is_open  # closed with the client
    listener.close()
    return [response.text for response in responses], most_open


def test_hundreds_of_concurrent_requests_each_get_a_connection():
    texts, most_open = run(count_connections(300, None, hold_until=300))
    assert texts == ["ok"] * 300
    assert most_open == 300


def test_max_connections_bounds_the_open_connections():
    texts, most_open = run(count_connections(60, 3, hold_until=3))
    assert texts == ["ok"] * 60
    assert most_open == 3


def test_the_transport_serves_again_after_closing_in_a_new_event_loop(server):
    transport = AiohttpTransport()
    for _ in range(2):

        async def go():
            async with httpx.AsyncClient(transport=transport) as client:
                return await client.post(server.base_url, json={})

        assert run(go()).status_code == 200
    assert len(server.requests) == 2


def test_the_lean_client_reopens_after_closing(server):
    client = AiohttpClient(timeout=5.0)
    for _ in range(2):

        async def go():
            try:
                return await client.post(server.base_url, content="plain", headers={"X-Name": "v"})
            finally:
                await client.aclose()

        assert run(go()).status_code == 200 and client.is_closed
    assert [request.body for request in server.requests] == [b"plain", b"plain"]
    assert server.requests[0].headers["X-Name"] == "v"


def test_without_aiohttp_the_clients_use_httpx_pool(server, monkeypatch):
    monkeypatch.setattr(http_transport, "aiohttp", None)
    with pytest.raises(ImportError, match="remote"):
        AiohttpTransport()
    with pytest.raises(ImportError, match="remote"):
        AiohttpClient()
    for make in (fast_client, async_client):
        client = make(5.0, 8)
        assert isinstance(client, httpx.AsyncClient)
        assert post(lambda _, client=client: client, server.base_url, json={}).status_code == 200


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_connections"):
        AiohttpTransport(0)
    with pytest.raises(ValueError, match="max_connections"):
        AiohttpClient(max_connections=-1)


def test_the_chat_agent_sends_through_the_lean_client_by_default(server):
    from oddoneout.agents.openai_chat import OpenAIChatAgent
    from oddoneout.agents.prompts import PAPER_LLM_PROMPT

    captions = {"a": "A dog.", "b": "A spider.", "c": "A puppy."}
    agent = OpenAIChatAgent("llm", "m", server.base_url, prompt=PAPER_LLM_PROMPT, captions=captions, api_key_env=None)

    async def go():
        try:
            return await asyncio.gather(*(agent.ajudge(("a", "b", "c")) for _ in range(20)))
        finally:
            await agent.aclose()

    assert [answer.choice for answer in run(go())] == [0] * 20
    assert {request.headers["User-Agent"] for request in server.requests} == {f"oddoneout/{__version__}"}


def test_the_declared_charset_decodes_the_text(make_client):
    async def go():
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            body = "café, naïve".encode("latin-1")
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=latin-1\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            writer.close()

        listener = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            async with make_client(5.0) as client:
                return await client.post(f"http://127.0.0.1:{port}/", content=b"x")
        finally:
            listener.close()

    response = run(go())
    assert response.encoding == "latin-1" and response.text == "café, naïve"
